// Implemented by its owner; see evroute/queue.h.

// Implemented by its owner; see evroute/broadcaster.h.

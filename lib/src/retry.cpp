// Implemented by its owner; see evroute/retry.h.

// Implemented by its owner; see evroute/filter.h.

// Implemented by its owner; see evroute/channel.h.

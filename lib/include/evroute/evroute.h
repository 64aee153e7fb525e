// The whole evroute sink library in one include.
#pragma once

#include "evroute/batch_sink.h"
#include "evroute/broadcaster.h"
#include "evroute/budget.h"
#include "evroute/channel.h"
#include "evroute/clock.h"
#include "evroute/disk_log.h"
#include "evroute/disk_log_inspection.h"
#include "evroute/durable_queue.h"
#include "evroute/event.h"
#include "evroute/filter.h"
#include "evroute/queue.h"
#include "evroute/rate_limit.h"
#include "evroute/retry.h"
#include "evroute/sink.h"
#include "evroute/status.h"
#include "evroute/sync_policy.h"

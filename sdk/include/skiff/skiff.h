/* skiff/skiff.h - everything a plugin may use, in one include.
 *
 * Each header below also compiles on its own; include the one you need
 * (<skiff/controller.h>, ...) or this one. runtime.h, proxy.h and cloud.h
 * are contracts for plugins that no core code calls yet (see each). */
#ifndef SKIFF_SKIFF_H
#define SKIFF_SKIFF_H
#include <skiff/errors.h>
#include <skiff/plugin.h>
#include <skiff/store.h>
#include <skiff/client.h>
#include <skiff/controller.h>
#include <skiff/leader.h>
#include <skiff/objects.h>
#include <skiff/discovery.h>
#include <skiff/cron.h>
#include <skiff/scheduler.h>
#include <skiff/loop.h>
#include <skiff/runtime.h>
#include <skiff/proxy.h>
#include <skiff/cloud.h>
#include <skiff/ffi.h>
#include <skiff/admission.h>
#endif

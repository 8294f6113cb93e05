/* skiff/skiff.h - everything a plugin may use, in one include. */
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
#endif

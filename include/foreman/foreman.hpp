#pragma once
/// @file foreman.hpp
/// The umbrella header: include this one.

#define FOREMAN_VERSION_MAJOR 0
#define FOREMAN_VERSION_MINOR 1
#define FOREMAN_VERSION_PATCH 0

#include <foreman/errors.hpp>
#include <foreman/master_worker.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>
#include <foreman/report.hpp>
#include <foreman/serialization.hpp>
#include <foreman/shared.hpp>
#include <foreman/timeline.hpp>

// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include "bt2/shared_object.hpp"
#include "schema/events.hpp"

namespace vmtrace::bt2 {

// The field class of a docs/events.json field type: its width and
// signedness, hexadecimal display for base 16, as LTTng writes them.
FieldClassRef schema_field_class(bt_trace_class* trace_class, schema::FieldType type, unsigned base);

}  // namespace vmtrace::bt2

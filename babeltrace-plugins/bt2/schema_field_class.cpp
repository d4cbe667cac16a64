// SPDX-License-Identifier: MIT
#include "schema_field_class.hpp"

#include "bt2/error.hpp"

namespace vmtrace::bt2 {

FieldClassRef schema_field_class(bt_trace_class* trace_class, schema::FieldType type, unsigned base) {
    using schema::FieldType;
    if (type == FieldType::string) {
        return FieldClassRef::adopt(check(bt_field_class_string_create(trace_class), "string field class"));
    }
    const bool is_signed = type == FieldType::s32 || type == FieldType::s64;
    auto fc = FieldClassRef::adopt(check(is_signed ? bt_field_class_integer_signed_create(trace_class)
                                                   : bt_field_class_integer_unsigned_create(trace_class),
                                         "integer field class"));
    const unsigned bits = type == FieldType::u8                              ? 8
                          : type == FieldType::u16                           ? 16
                          : type == FieldType::u32 || type == FieldType::s32 ? 32
                                                                             : 64;
    bt_field_class_integer_set_field_value_range(fc.get(), bits);
    if (base == 16) {
        bt_field_class_integer_set_preferred_display_base(fc.get(),
                                                          BT_FIELD_CLASS_INTEGER_PREFERRED_DISPLAY_BASE_HEXADECIMAL);
    }
    return fc;
}

}  // namespace vmtrace::bt2

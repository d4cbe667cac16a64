// SPDX-License-Identifier: MIT
#include "kept_messages.hpp"
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include <vector>

namespace vmtrace::bt2 {

void keep_after_error(bt_message_array_const messages, std::uint64_t count) {
    static std::vector<const bt_message*> kept;
    kept.insert(kept.end(), messages, messages + count);
#ifdef __SANITIZE_ADDRESS__
    // The plugin (and this vector) may be unloaded before the leak check:
    // tell LeakSanitizer that these are kept on purpose.
    for (std::uint64_t i = 0; i < count; ++i) {
        __lsan_ignore_object(messages[i]);
    }
#endif
}

}  // namespace vmtrace::bt2

// SPDX-License-Identifier: MIT
#include "lib/isolate/attribution.hpp"

namespace vmtrace::isolate {

std::string_view to_string(Attribution attribution) {
    switch (attribution) {
    case Attribution::guest:
        return "guest";
    case Attribution::guest_kernel:
        return "guest-kernel";
    case Attribution::shared_other:
        return "shared-other";
    case Attribution::host_on_behalf:
        return "host-on-behalf";
    case Attribution::host:
        return "host";
    case Attribution::ambiguous:
        return "ambiguous";
    case Attribution::before_map:
        return "before-map";
    case Attribution::guest_untraced:
        return "guest-untraced";
    case Attribution::host_untraced:
        return "host-untraced";
    }
    return "?";
}

}  // namespace vmtrace::isolate

// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <new>
#include <stdexcept>
#include <string>

namespace vmtrace::bt2 {

// Thrown inside component code.  Exceptions never cross into babeltrace2:
// each C entry point runs its body through `guard()`, the one bridge that
// turns them into a status code and an error cause.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A babeltrace2 call failed; babeltrace2 already appended its own cause,
// `what()` adds ours.
class CallError : public Error {
public:
    using Error::Error;
};

// Throws CallError when a creation call returned NULL.
template <typename T>
T* check(T* object, const char* what) {
    if (object == nullptr) {
        throw CallError(std::string("cannot create ") + what);
    }
    return object;
}

// Throws CallError when a setter's status is not OK (all babeltrace2 OK
// statuses are 0).
template <typename Status>
void check_status(Status status, const char* what) {
    if (static_cast<int>(status) != 0) {
        throw CallError(std::string("cannot ") + what);
    }
}

// Every babeltrace2 status enumeration shares these values.
inline constexpr int kStatusError = -1;
inline constexpr int kStatusMemoryError = -12;
static_assert(BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_ERROR == kStatusError);
static_assert(BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_MEMORY_ERROR == kStatusMemoryError);

// Runs `body`; on an exception, appends a cause with `append_cause` and
// returns the matching error status of type `Status`.
template <typename Status, typename AppendCause, typename Body>
Status guard(AppendCause&& append_cause, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return static_cast<Status>(kStatusMemoryError);
    } catch (const std::exception& e) {
        append_cause(e.what());
        return static_cast<Status>(kStatusError);
    } catch (...) {
        append_cause("unknown error");
        return static_cast<Status>(kStatusError);
    }
}

}  // namespace vmtrace::bt2

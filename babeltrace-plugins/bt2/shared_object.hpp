// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <cstdint>
#include <type_traits>
#include <utility>

namespace vmtrace::bt2 {

// A borrowed reference to a `T`: no reference counting, valid while some
// owner (a Shared<T>, or a parent object that holds it) lives.  Const-ness
// is part of `T`: a Borrowed<bt_event_class> converts to a
// Borrowed<const bt_event_class>, never the reverse.  Being a type of its
// own, a borrowed reference cannot be mistaken for one that must be put.
template <typename T>
class Borrowed {
public:
    Borrowed() = default;
    explicit Borrowed(T* object) : object_(object) {}
    template <typename U>
    requires(!std::is_same_v<U, T> && std::is_convertible_v<U*, T*>) Borrowed(Borrowed<U> other)
        : object_(other.get()) {}  // NOLINT: implicit, like T* -> const T*

    [[nodiscard]] T* get() const { return object_; }
    explicit operator bool() const { return object_ != nullptr; }
    bool operator==(const Borrowed&) const = default;

private:
    T* object_ = nullptr;
};

// Owns exactly one babeltrace2 reference to a `T`.  Component code holds
// every object it creates through one of these from the moment it exists,
// so that no path, the error ones included, leaks or double-puts a
// reference.  Borrowed references are Borrowed<T>.
template <typename T, auto GetRef, auto PutRef>
class Shared {
public:
    Shared() = default;

    // Takes over a reference that the caller already owns (what a
    // `*_create()` returns).
    static Shared adopt(T* object) { return Shared(object); }

    // Acquires a new reference to a borrowed object.
    static Shared acquire(T* object) {
        if (object != nullptr) {
            GetRef(object);
        }
        return Shared(object);
    }

    Shared(const Shared& other) : object_(other.object_) {
        if (object_ != nullptr) {
            GetRef(object_);
        }
    }
    Shared(Shared&& other) noexcept : object_(std::exchange(other.object_, nullptr)) {}
    Shared& operator=(Shared other) noexcept {
        std::swap(object_, other.object_);
        return *this;
    }
    ~Shared() { reset(); }

    void reset() {
        if (object_ != nullptr) {
            PutRef(object_);
            object_ = nullptr;
        }
    }

    // Gives the reference away (to a babeltrace2 call that steals it).
    [[nodiscard]] T* release() { return std::exchange(object_, nullptr); }

    [[nodiscard]] T* get() const { return object_; }
    [[nodiscard]] Borrowed<T> borrow() const { return Borrowed<T>(object_); }
    explicit operator bool() const { return object_ != nullptr; }

private:
    explicit Shared(T* object) : object_(object) {}

    T* object_ = nullptr;
};

using TraceClassRef = Shared<bt_trace_class, bt_trace_class_get_ref, bt_trace_class_put_ref>;
using TraceRef = Shared<bt_trace, bt_trace_get_ref, bt_trace_put_ref>;
using StreamClassRef = Shared<bt_stream_class, bt_stream_class_get_ref, bt_stream_class_put_ref>;
using StreamRef = Shared<bt_stream, bt_stream_get_ref, bt_stream_put_ref>;
using PacketRef = Shared<bt_packet, bt_packet_get_ref, bt_packet_put_ref>;
using ClockClassRef = Shared<bt_clock_class, bt_clock_class_get_ref, bt_clock_class_put_ref>;
using FieldClassRef = Shared<bt_field_class, bt_field_class_get_ref, bt_field_class_put_ref>;
using EventClassRef = Shared<bt_event_class, bt_event_class_get_ref, bt_event_class_put_ref>;
using MessageRef = Shared<const bt_message, bt_message_get_ref, bt_message_put_ref>;
// A message being built (its clock snapshot set) before it is emitted.
using MutableMessageRef = Shared<bt_message, bt_message_get_ref, bt_message_put_ref>;
using MessageIteratorRef = Shared<bt_message_iterator, bt_message_iterator_get_ref, bt_message_iterator_put_ref>;
using ValueRef = Shared<bt_value, bt_value_get_ref, bt_value_put_ref>;
using GraphRef = Shared<bt_graph, bt_graph_get_ref, bt_graph_put_ref>;
using PluginRef = Shared<const bt_plugin, bt_plugin_get_ref, bt_plugin_put_ref>;
// A query's result: babeltrace2 hands out a reference to a frozen value.
using ConstValueRef = Shared<const bt_value, bt_value_get_ref, bt_value_put_ref>;
using QueryExecutorRef = Shared<bt_query_executor, bt_query_executor_get_ref, bt_query_executor_put_ref>;

// Owns the references of a batch that bt_message_iterator_next() returned:
// take() hands one message to a MessageRef; whatever was not taken when
// the batch is destroyed (an early return, an exception) is put.
class MessageBatch {
public:
    MessageBatch(bt_message_array_const messages, std::uint64_t count) : messages_(messages), count_(count) {}
    MessageBatch(const MessageBatch&) = delete;
    MessageBatch& operator=(const MessageBatch&) = delete;
    ~MessageBatch() {
        for (std::uint64_t i = next_; i < count_; ++i) {
            bt_message_put_ref(messages_[i]);
        }
    }

    [[nodiscard]] bool empty() const { return next_ == count_; }
    // The next message, in order.
    MessageRef take() { return MessageRef::adopt(messages_[next_++]); }

private:
    bt_message_array_const messages_;
    std::uint64_t count_;
    std::uint64_t next_ = 0;
};

}  // namespace vmtrace::bt2

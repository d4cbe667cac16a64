// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace vmtrace::isolate {

// An open-addressing hash map from 64-bit keys to small trivially copyable
// values: one flat array, linear probing, Fibonacci hashing.
//
// Why not std::unordered_map: it allocates a node per entry and chases a
// pointer per lookup; the join looks a page up for every memory access
// (join_benchmark compares both).  Deletion shifts the following entries
// back instead of leaving tombstones, and the table halves when it is less
// than 1/8 full, so map/unmap churn keeps probe lengths and memory flat.
//
// The key ~0 is reserved (it marks an empty slot): callers build keys from
// page numbers, which never reach it.  Pointers returned by find() and
// try_emplace() are valid until the next insertion or erasure.
template <typename V>
class FlatMap {
    static_assert(std::is_trivially_copyable_v<V>);

public:
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};

    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }
    [[nodiscard]] std::size_t capacity() const { return slots_.size(); }
    [[nodiscard]] std::size_t memory_bytes() const { return slots_.capacity() * sizeof(Slot); }

    [[nodiscard]] V* find(std::uint64_t key) { return const_cast<V*>(static_cast<const FlatMap*>(this)->find(key)); }

    [[nodiscard]] const V* find(std::uint64_t key) const {
        if (size_ == 0) {
            return nullptr;
        }
        for (std::size_t i = home(key);; i = (i + 1) & mask_) {
            const Slot& slot = slots_[i];
            if (slot.key == key) {
                return &slot.value;
            }
            if (slot.key == kEmpty) {
                return nullptr;
            }
        }
    }

    // The value of `key`, value-initialised if it was absent (second: true).
    std::pair<V*, bool> try_emplace(std::uint64_t key) {
        // Grow at 3/4: linear probing's probe lengths climb past that.
        if ((size_ + 1) * 4 > slots_.size() * 3) {
            rehash(slots_.empty() ? 16 : slots_.size() * 2);
        }
        std::size_t i = home(key);
        for (;; i = (i + 1) & mask_) {
            if (slots_[i].key == key) {
                return {&slots_[i].value, false};
            }
            if (slots_[i].key == kEmpty) {
                break;
            }
        }
        slots_[i].key = key;
        slots_[i].value = V{};
        ++size_;
        return {&slots_[i].value, true};
    }

    bool erase(std::uint64_t key) {
        if (size_ == 0) {
            return false;
        }
        std::size_t hole = home(key);
        for (;; hole = (hole + 1) & mask_) {
            if (slots_[hole].key == key) {
                break;
            }
            if (slots_[hole].key == kEmpty) {
                return false;
            }
        }
        // Backward shift: an entry after the hole moves into it when the hole
        // lies on its probe path (between its home slot and where it sits).
        for (std::size_t j = (hole + 1) & mask_; slots_[j].key != kEmpty; j = (j + 1) & mask_) {
            const std::size_t k = home(slots_[j].key);
            if (((j - k) & mask_) >= ((j - hole) & mask_)) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole].key = kEmpty;
        --size_;
        if (slots_.size() > 16 && size_ * 8 < slots_.size()) {
            rehash(slots_.size() / 2);
        }
        return true;
    }

    // Erases the entries for which pred(key, value) is true; one pass, the
    // table rebuilt at the size that remains.
    template <typename Pred>
    std::size_t erase_if(Pred&& pred) {
        std::vector<Slot> old;
        old.swap(slots_);
        const std::size_t before = size_;
        size_ = 0;
        std::size_t keep = 0;
        for (const Slot& slot : old) {
            if (slot.key != kEmpty && !pred(slot.key, slot.value)) {
                ++keep;
            }
        }
        std::size_t capacity = 16;
        while (keep * 4 > capacity * 3 / 2) {
            capacity *= 2;
        }
        allocate(keep == 0 ? 0 : capacity);
        for (const Slot& slot : old) {
            if (slot.key != kEmpty && !pred(slot.key, slot.value)) {
                insert_fresh(slot);
            }
        }
        return before - size_;
    }

    template <typename F>
    void for_each(F&& f) const {
        for (const Slot& slot : slots_) {
            if (slot.key != kEmpty) {
                f(slot.key, slot.value);
            }
        }
    }

    void clear() {
        slots_.clear();
        slots_.shrink_to_fit();
        size_ = 0;
        mask_ = 0;
        shift_ = 63;
    }

private:
    struct Slot {
        std::uint64_t key = kEmpty;
        V value{};
    };

    [[nodiscard]] std::size_t home(std::uint64_t key) const {
        return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
    }

    void allocate(std::size_t capacity) {
        slots_.assign(capacity, Slot{});
        slots_.shrink_to_fit();
        mask_ = capacity == 0 ? 0 : capacity - 1;
        shift_ = 64;
        for (std::size_t c = capacity; c > 1; c >>= 1) {
            --shift_;
        }
    }

    void insert_fresh(const Slot& slot) {
        std::size_t i = home(slot.key);
        while (slots_[i].key != kEmpty) {
            i = (i + 1) & mask_;
        }
        slots_[i] = slot;
        ++size_;
    }

    void rehash(std::size_t capacity) {
        std::vector<Slot> old;
        old.swap(slots_);
        size_ = 0;
        allocate(capacity);
        for (const Slot& slot : old) {
            if (slot.key != kEmpty) {
                insert_fresh(slot);
            }
        }
    }

    std::vector<Slot> slots_;
    std::size_t size_ = 0;
    std::size_t mask_ = 0;
    unsigned shift_ = 63;
};

}  // namespace vmtrace::isolate

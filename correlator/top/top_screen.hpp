// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

#include "top/top_view.hpp"

namespace vmtrace::cli::top {

// The full-screen terminal of `vmtrace top` (ncurses): lines drawn from
// the top, alerts in red, a status line of keys at the bottom.  The
// terminal is restored when the object goes away.
class Screen {
public:
    Screen();
    ~Screen();
    Screen(const Screen&) = delete;
    Screen& operator=(const Screen&) = delete;

    // The key pressed, -1 when none (never blocks).
    int key();
    // Draws `lines` and the status line; a terminal smaller than the view
    // needs gets a message saying so instead.
    void draw(const std::vector<Line>& lines, const std::string& status);

    static constexpr int kMinColumns = 60;
    static constexpr int kMinLines = 8;
};

}  // namespace vmtrace::cli::top

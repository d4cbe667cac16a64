// SPDX-License-Identifier: MIT
#include "top/top_screen.hpp"

#include <curses.h>
#include <fmt/format.h>

namespace vmtrace::cli::top {
namespace {

enum Pair : short { kAlert = 1, kTitle = 2, kHeader = 3 };

}  // namespace

Screen::Screen() {
    initscr();
    cbreak();  // Ctrl-C still interrupts
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(kAlert, COLOR_RED, -1);
        init_pair(kTitle, COLOR_BLACK, COLOR_CYAN);
        init_pair(kHeader, COLOR_BLACK, COLOR_WHITE);
    }
}

Screen::~Screen() {
    endwin();
}

int Screen::key() {
    const int ch = getch();
    return ch == ERR ? -1 : ch;
}

void Screen::draw(const std::vector<Line>& lines, const std::string& status) {
    erase();
    if (COLS < kMinColumns || LINES < kMinLines) {
        mvaddnstr(
            0, 0,
            fmt::format("terminal too small ({}x{}): vmtrace top needs {}x{}", COLS, LINES, kMinColumns, kMinLines)
                .c_str(),
            COLS);
        if (LINES > 1) {
            mvaddnstr(1, 0, "enlarge it, or press q", COLS);
        }
        refresh();
        return;
    }
    const int body = LINES - 1;
    int y = 0;
    for (const Line& line : lines) {
        if (y >= body) {
            break;
        }
        attr_t attr = A_NORMAL;
        short pair = 0;
        switch (line.kind) {
        case Line::Kind::title:
            attr = A_BOLD;
            pair = kTitle;
            break;
        case Line::Kind::alert:
            attr = A_BOLD;
            pair = kAlert;
            break;
        case Line::Kind::table_header:
            pair = kHeader;
            break;
        case Line::Kind::vm:
            attr = A_BOLD;
            break;
        case Line::Kind::row:
        case Line::Kind::text:
            break;
        }
        if (has_colors() && pair != 0) {
            attr |= COLOR_PAIR(pair);
        }
        attron(attr);
        mvaddnstr(y, 0, line.text.c_str(), COLS);
        if (line.kind == Line::Kind::title || line.kind == Line::Kind::table_header) {
            for (int x = static_cast<int>(line.text.size()); x < COLS; ++x) {
                mvaddch(y, x, ' ');
            }
        }
        attroff(attr);
        ++y;
    }
    if (static_cast<int>(lines.size()) > body) {
        mvaddnstr(body - 1, 0, fmt::format("... {} more lines (select one VM with v)", lines.size() - body + 1).c_str(),
                  COLS);
    }
    attron(A_REVERSE);
    mvaddnstr(LINES - 1, 0, status.c_str(), COLS);
    for (int x = static_cast<int>(status.size()); x < COLS; ++x) {
        mvaddch(LINES - 1, x, ' ');
    }
    attroff(A_REVERSE);
    refresh();
}

}  // namespace vmtrace::cli::top

// SPDX-License-Identifier: MIT
// The HTML report's template, style sheet and script (correlator/report/),
// embedded at build time by correlator/report/embed.cmake.
#pragma once

#include <string_view>

namespace vmtrace::report {

extern const std::string_view kReport_report_html;
extern const std::string_view kReport_report_css;
extern const std::string_view kReport_report_js;

}  // namespace vmtrace::report

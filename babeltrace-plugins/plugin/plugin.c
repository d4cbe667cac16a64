/* SPDX-License-Identifier: MIT */
/* Registration of the vmtrace babeltrace2 plugin and its component classes. */
#include <babeltrace2/babeltrace.h>

#include "plugin/entry_points.h"

BT_PLUGIN_MODULE();

BT_PLUGIN(vmtrace);
BT_PLUGIN_DESCRIPTION("Host/guest analysis of KVM virtual machines traced with LTTng");
BT_PLUGIN_AUTHOR("The vmtrace developers");
BT_PLUGIN_LICENSE("MIT");

BT_PLUGIN_SOURCE_COMPONENT_CLASS(scenario, vmtrace_scenario_iterator_next);
BT_PLUGIN_SOURCE_COMPONENT_CLASS_DESCRIPTION(scenario,
	"Simulate a KVM host and its guests as LTTng kernel traces, with ground truth");
BT_PLUGIN_SOURCE_COMPONENT_CLASS_HELP(scenario,
	"One output port per machine (host, guest0, guest1, ...). "
	"See docs/components.md for the parameters.");
BT_PLUGIN_SOURCE_COMPONENT_CLASS_INITIALIZE_METHOD(scenario, vmtrace_scenario_initialize);
BT_PLUGIN_SOURCE_COMPONENT_CLASS_FINALIZE_METHOD(scenario, vmtrace_scenario_finalize);
BT_PLUGIN_SOURCE_COMPONENT_CLASS_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD(scenario,
	vmtrace_scenario_iterator_initialize);
BT_PLUGIN_SOURCE_COMPONENT_CLASS_MESSAGE_ITERATOR_CLASS_FINALIZE_METHOD(scenario,
	vmtrace_scenario_iterator_finalize);

BT_PLUGIN_FILTER_COMPONENT_CLASS(sync, vmtrace_sync_iterator_next);
BT_PLUGIN_FILTER_COMPONENT_CLASS_DESCRIPTION(sync,
	"Place guest traces on the host's time base from vmsync handshakes");
BT_PLUGIN_FILTER_COMPONENT_CLASS_HELP(sync,
	"Connect the host trace and any number of guest traces to its input ports. "
	"See docs/components.md for the parameters.");
BT_PLUGIN_FILTER_COMPONENT_CLASS_INITIALIZE_METHOD(sync, vmtrace_sync_initialize);
BT_PLUGIN_FILTER_COMPONENT_CLASS_FINALIZE_METHOD(sync, vmtrace_sync_finalize);
BT_PLUGIN_FILTER_COMPONENT_CLASS_INPUT_PORT_CONNECTED_METHOD(sync, vmtrace_sync_input_port_connected);
BT_PLUGIN_FILTER_COMPONENT_CLASS_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD(sync,
	vmtrace_sync_iterator_initialize);
BT_PLUGIN_FILTER_COMPONENT_CLASS_MESSAGE_ITERATOR_CLASS_FINALIZE_METHOD(sync,
	vmtrace_sync_iterator_finalize);

BT_PLUGIN_FILTER_COMPONENT_CLASS(isolate, vmtrace_isolate_iterator_next);
BT_PLUGIN_FILTER_COMPONENT_CLASS_DESCRIPTION(isolate,
	"Split a machine's memory trace into one trace per VM and one for the host");
BT_PLUGIN_FILTER_COMPONENT_CLASS_HELP(isolate,
	"Connect filter.vmtrace.sync's output (host, guests and the memory tracer's trace). "
	"See docs/components.md and docs/isolation.md.");
BT_PLUGIN_FILTER_COMPONENT_CLASS_INITIALIZE_METHOD(isolate, vmtrace_isolate_initialize);
BT_PLUGIN_FILTER_COMPONENT_CLASS_FINALIZE_METHOD(isolate, vmtrace_isolate_finalize);
BT_PLUGIN_FILTER_COMPONENT_CLASS_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD(isolate,
	vmtrace_isolate_iterator_initialize);
BT_PLUGIN_FILTER_COMPONENT_CLASS_MESSAGE_ITERATOR_CLASS_FINALIZE_METHOD(isolate,
	vmtrace_isolate_iterator_finalize);

BT_PLUGIN_SINK_COMPONENT_CLASS(analysis, vmtrace_analysis_consume);
BT_PLUGIN_SINK_COMPONENT_CLASS_DESCRIPTION(analysis,
	"vCPU states, exits, migrations and the non-deterministic event log of each VM");
BT_PLUGIN_SINK_COMPONENT_CLASS_HELP(analysis,
	"Connect filter.vmtrace.sync's output (or a host trace alone). "
	"Writes analysis.json and CSV files into output-dir; see docs/analysis-output.md.");
BT_PLUGIN_SINK_COMPONENT_CLASS_INITIALIZE_METHOD(analysis, vmtrace_analysis_initialize);
BT_PLUGIN_SINK_COMPONENT_CLASS_FINALIZE_METHOD(analysis, vmtrace_analysis_finalize);
BT_PLUGIN_SINK_COMPONENT_CLASS_GRAPH_IS_CONFIGURED_METHOD(analysis, vmtrace_analysis_graph_is_configured);

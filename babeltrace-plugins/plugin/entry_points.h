/* SPDX-License-Identifier: MIT */
/*
 * The C entry points of the vmtrace plugin's component classes.  They are
 * implemented in C++ (each one a guard() bridge) and registered from
 * plugin.c, because babeltrace2's registration macros are C only.
 */
#ifndef VMTRACE_PLUGIN_ENTRY_POINTS_H
#define VMTRACE_PLUGIN_ENTRY_POINTS_H

#include <babeltrace2/babeltrace.h>

#ifdef __cplusplus
extern "C" {
#endif

/* source.vmtrace.scenario */
bt_component_class_initialize_method_status vmtrace_scenario_initialize(
	bt_self_component_source *self, bt_self_component_source_configuration *config,
	const bt_value *params, void *init_data);
void vmtrace_scenario_finalize(bt_self_component_source *self);
bt_message_iterator_class_initialize_method_status vmtrace_scenario_iterator_initialize(
	bt_self_message_iterator *self, bt_self_message_iterator_configuration *config,
	bt_self_component_port_output *port);
void vmtrace_scenario_iterator_finalize(bt_self_message_iterator *self);
bt_message_iterator_class_next_method_status vmtrace_scenario_iterator_next(
	bt_self_message_iterator *self, bt_message_array_const messages, uint64_t capacity,
	uint64_t *count);

/* filter.vmtrace.sync */
bt_component_class_initialize_method_status vmtrace_sync_initialize(
	bt_self_component_filter *self, bt_self_component_filter_configuration *config,
	const bt_value *params, void *init_data);
void vmtrace_sync_finalize(bt_self_component_filter *self);
bt_component_class_port_connected_method_status vmtrace_sync_input_port_connected(
	bt_self_component_filter *self, bt_self_component_port_input *self_port,
	const bt_port_output *other_port);
bt_message_iterator_class_initialize_method_status vmtrace_sync_iterator_initialize(
	bt_self_message_iterator *self, bt_self_message_iterator_configuration *config,
	bt_self_component_port_output *port);
void vmtrace_sync_iterator_finalize(bt_self_message_iterator *self);
bt_message_iterator_class_next_method_status vmtrace_sync_iterator_next(
	bt_self_message_iterator *self, bt_message_array_const messages, uint64_t capacity,
	uint64_t *count);

/* filter.vmtrace.isolate */
bt_component_class_initialize_method_status vmtrace_isolate_initialize(
	bt_self_component_filter *self, bt_self_component_filter_configuration *config,
	const bt_value *params, void *init_data);
void vmtrace_isolate_finalize(bt_self_component_filter *self);
bt_message_iterator_class_initialize_method_status vmtrace_isolate_iterator_initialize(
	bt_self_message_iterator *self, bt_self_message_iterator_configuration *config,
	bt_self_component_port_output *port);
void vmtrace_isolate_iterator_finalize(bt_self_message_iterator *self);
bt_message_iterator_class_next_method_status vmtrace_isolate_iterator_next(
	bt_self_message_iterator *self, bt_message_array_const messages, uint64_t capacity,
	uint64_t *count);

/* sink.vmtrace.analysis */
bt_component_class_initialize_method_status vmtrace_analysis_initialize(
	bt_self_component_sink *self, bt_self_component_sink_configuration *config,
	const bt_value *params, void *init_data);
void vmtrace_analysis_finalize(bt_self_component_sink *self);
bt_component_class_sink_graph_is_configured_method_status vmtrace_analysis_graph_is_configured(
	bt_self_component_sink *self);
bt_component_class_sink_consume_method_status vmtrace_analysis_consume(bt_self_component_sink *self);

#ifdef __cplusplus
}
#endif

#endif /* VMTRACE_PLUGIN_ENTRY_POINTS_H */

"""The operator's tools: the command line (`cli`, and `state_commands` for status, history and resolve),
what those commands read and write (`fleet_status`, `order_history`, `resolve`), what they print (`display`
for the handler's result, `state_display` for the state) and the simulator (`simulate/`). Never on FC's
hot path."""

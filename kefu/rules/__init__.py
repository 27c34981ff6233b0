"""The rule sections of a record type (workflow, SLA clocks, levels, approvals, callbacks): one module per section, each registered with the records area's section registry."""

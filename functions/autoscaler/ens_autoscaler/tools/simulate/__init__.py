"""What-if: replay a metric history through the function's own planner and guards.

Operator tooling, never imported by the handler:

    history       CSV ⇄ readings (`time, regionCode, metric, value`)
    cloudmonitor  DescribeMetricList → a history (the official SDK, paged)
    fleet         the simulated inventory: ordered devices Running after a delay
    replay        one planner tick per timestamp, with a state store's ledger
    report        the numbers per region, and the table
    chart         the PNG (matplotlib, imported there only)
"""

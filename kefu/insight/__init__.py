"""Reading across records for people: saved views, 逾期督办, exports, reports and the dashboard."""

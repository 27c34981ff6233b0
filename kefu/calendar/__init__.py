"""The Chinese working-day calendar (工作日历): holidays, make-up workdays, working-day arithmetic."""

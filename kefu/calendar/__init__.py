"""The Chinese working-day calendar (工作日历): holidays, make-up workdays, working-day arithmetic.

``days`` (what an entry is, where entries are stored) · ``arithmetic`` (counting working days on an in-memory
snapshot) · ``workday_index`` (the index of working days that counting answers from, in O(log n)) ·
``workcalendar`` (the write path, seeding from chinesecalendar, this process's copy, change listeners) ·
``recompute`` (how far the background recomputation of deadlines after an edit got).
"""

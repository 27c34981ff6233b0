"""满意度调查: satisfaction surveys (000 §五, 001 §六3, 004 满意度调查).

- ``plans``: the survey — its plan (purpose, target group, method, period, staff), questionnaire (dimensions and
  questions) and targets — and the plan's approval, which must come 20 days before the start. The plan is mirrored
  by a ``survey_plan`` record (``kefu.records.write``) whose clocks run until ``approve_by`` (start − 20 days) and
  ``archive_by`` (end + 5 days), so 逾期督办 lists a late plan or a late archive.
- ``answers``: answer links prepared for the customers of the chosen projects (a random token each), distributed
  when sent (the downloaded distribution list, or an agent marking a row sent), answers through the link or entered
  by an agent on the phone, and the distribution and return rates against their targets.
- ``results``: scores per dimension and per question, corrective actions (``corrective_action`` records) for the
  items below the survey's threshold, the report as XLSX, and archiving.
- ``duties``: reminders, the month before, of the yearly consumer survey (May) and the quarterly merchant survey.

Every read and change is limited to the surveys in the user's scope: those whose ``survey_plan`` record they may
read (change) — ``plans.get_survey`` with the user's access.

Surveys and answers are stored in the ``surveys`` and ``survey_answers`` collections; every write goes through
these modules.
"""

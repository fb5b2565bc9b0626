"""Bank rails as plain Python: business-day calendars, ACH cut-off windows, NACHA files of a
window. The rail activities and the bank simulator both use it; nothing here talks to
Temporal or HTTP."""

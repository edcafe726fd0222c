"""Run reports: report.json, report.md and PNG plots comparing Smart City and AI City modes."""

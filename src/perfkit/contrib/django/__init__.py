"""perfkit for Django: request metrics with Django's route templates (see docs/metrics.md)."""

from django.db import models


def expensive_calculation():
    expensive_calculation.num_runs += 1
    return "computed"


expensive_calculation.num_runs = 0


class Poll(models.Model):
    question = models.CharField(max_length=200)
    answer = models.CharField(max_length=200, default=expensive_calculation)


class Book(models.Model):
    title = models.CharField(max_length=200)
    price_cents = models.IntegerField()

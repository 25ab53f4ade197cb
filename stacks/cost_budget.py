"""A monthly AWS Budgets cost budget on the account's SageMaker spend (monthly_budget_usd), telling an address as the
month's cost passes 80% of it and as it is forecast to pass all of it.

It watches the whole account's SageMaker cost (Cost Explorer's service "Amazon SageMaker"), not only this stack's:
a filter on this stack's resources needs a cost allocation tag activated in the Billing console first, and an
account-wide budget errs on the early side. Budgets update a few times a day (AWS Billing User Guide, "Managing your
costs with AWS Budgets"): the instance-hours alarms (stacks/monitoring.py) tell within the day.
"""

from __future__ import annotations

import re

from aws_cdk import aws_budgets as budgets
from constructs import Construct

from deployment.alarm_thresholds import EMAIL

SAGEMAKER_SERVICE = "Amazon SageMaker"  # the SERVICE dimension value of Cost Explorer and Budgets


class SageMakerBudget(Construct):
    """Props: monthly_usd (the budget, in USD), email (who is told), budget_name (default: CloudFormation's),
    actual_percent (default 80: the month's cost so far), forecast_percent (default 100: the forecast for the month).
    Attributes: budget (CfnBudget)."""

    def __init__(self, scope: Construct, construct_id: str, *, monthly_usd: float, email: str,
                 budget_name: str | None = None, actual_percent: float = 80, forecast_percent: float = 100):
        super().__init__(scope, construct_id)
        problems = []
        if not 1 <= monthly_usd <= 1_000_000:
            problems.append(f"monthly_usd must be from 1 to 1000000 (got {monthly_usd:g})")
        if not re.match(EMAIL, email):
            problems.append(f"email {email!r} is not an email address")
        if not (0 < actual_percent <= 1000 and 0 < forecast_percent <= 1000):
            problems.append("actual_percent and forecast_percent must be above 0 and at most 1000")
        if problems:
            raise ValueError(f"SageMakerBudget {construct_id}: " + "; ".join(problems))
        subscriber = [budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=email)]

        def notify(kind: str, percent: float):
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
                    threshold_type="PERCENTAGE"),
                subscribers=subscriber)

        self.budget = budgets.CfnBudget(
            self, "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name, budget_type="COST", time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_usd, unit="USD"),
                cost_filters={"Service": [SAGEMAKER_SERVICE]}),
            notifications_with_subscribers=[notify("ACTUAL", actual_percent),
                                            notify("FORECASTED", forecast_percent)])

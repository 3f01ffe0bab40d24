"""Conditions the catalog reports; statuses come from their kinds at the edge."""

from __future__ import annotations

from stackbe_common.errors import Conflict, InvalidInput, NotFound


class ProductNotFound(NotFound):
    code = "PRODUCT_NOT_FOUND"
    default_message = "Product not found"


class PlanNotFound(NotFound):
    code = "PLAN_NOT_FOUND"
    default_message = "Plan not found"


class PlanImmutableField(InvalidInput):
    code = "PLAN_IMMUTABLE_FIELD"
    default_message = "This plan field cannot change"


class PlanArchived(Conflict):
    code = "PLAN_ARCHIVED"
    default_message = "The plan is archived"


class PlanInUse(Conflict):
    code = "PLAN_IN_USE"
    default_message = "Live subscriptions use this plan"

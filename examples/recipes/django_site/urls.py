"""The example's views and URLs: an order page that logs, and one that fails."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.urls import path

log = logging.getLogger("shop.orders")

ORDERS = {"o-1": "u-1", "o-2": "u-2"}  # order id: its customer


def order(request: HttpRequest, order_id: str) -> HttpResponse:
    if order_id == "broken":
        raise LookupError("order broken is missing from the ledger")
    user_id = ORDERS.get(order_id)
    if user_id is None:
        return HttpResponse("no such order", status=404)
    log.info(
        "order %s shown",
        order_id,
        extra={"user_id": user_id, "request_id": request.headers.get("X-Request-ID")},
    )
    return HttpResponse(f"order {order_id}")


urlpatterns = [path("orders/<str:order_id>", order)]

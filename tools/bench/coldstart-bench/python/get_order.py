"""GET /v1/orders/{id} with boto3: the Python equivalent of orders-http reading an order.

The client is built at import (init), as a Python function would; one GetItem per request.
"""
import json
import os

import boto3
from boto3.dynamodb.types import TypeDeserializer

TABLE = os.environ["ORDERS_TABLE"]
dynamodb = boto3.client("dynamodb")
deserializer = TypeDeserializer()


def handler(event, context):
    order_id = (event.get("pathParameters") or {}).get("id", "")
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    item = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"ORDER#{order_id}"}, "sk": {"S": "ORDER"}},
        ConsistentRead=True,
    ).get("Item")
    if item is None or item.get("customer_id", {}).get("S") != claims.get("sub"):
        return {"statusCode": 404, "headers": {"content-type": "application/problem+json"},
                "body": json.dumps({"title": "Not Found", "status": 404})}
    order = {k: deserializer.deserialize(v) for k, v in item.items()}
    body = {"id": order_id, "status": order.get("status"), "total": order.get("total")}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps(body, default=str)}

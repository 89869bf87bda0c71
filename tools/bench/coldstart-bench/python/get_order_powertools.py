"""GET /v1/orders/{id} with boto3 and Powertools for AWS Lambda (Python): structured logger and
the HTTP API resolver, as the Powertools documentation sets a function up."""
import os

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from boto3.dynamodb.types import TypeDeserializer

TABLE = os.environ["ORDERS_TABLE"]
logger = Logger(service="orders")
app = APIGatewayHttpResolver()
dynamodb = boto3.client("dynamodb")
deserializer = TypeDeserializer()


@app.get("/v1/orders/<order_id>")
def get_order(order_id: str):
    sub = app.current_event.request_context.authorizer.jwt_claim.get("sub")
    item = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"ORDER#{order_id}"}, "sk": {"S": "ORDER"}},
        ConsistentRead=True,
    ).get("Item")
    if item is None or item.get("customer_id", {}).get("S") != sub:
        raise NotFoundError("order not found")
    order = {k: deserializer.deserialize(v) for k, v in item.items()}
    return {"id": order_id, "status": order.get("status"), "total": str(order.get("total"))}


@logger.inject_lambda_context
def handler(event, context):
    return app.resolve(event, context)

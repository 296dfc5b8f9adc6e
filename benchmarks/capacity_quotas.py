"""AWS quotas (and the payment provider's rate limits) the capacity model compares the load with: default values,
by region where they differ, each with the page it comes from and whether the number was read there.

Checked on CHECKED with the documentation search available to this project (stored copies of AWS's pages, not the
live site). "verified" means the number was read in the source's text; anything else says what was and was not
seen. Your account's values can differ (new accounts start lower; raised quotas are higher): the Service Quotas
console shows them, and `--quota KEY=VALUE` replaces any default here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHECKED = "2026-11-30"

# Step Functions' and EventBridge's larger default buckets are for these three regions.
LARGE_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})
# API Gateway's lower account throttle (2,500 RPS, burst 1,250) applies in these regions.
API_GATEWAY_LOW_REGIONS = frozenset(
    {
        "af-south-1",
        "eu-south-1",
        "ap-southeast-3",
        "me-central-1",
        "ap-south-2",
        "ap-southeast-4",
        "eu-south-2",
        "eu-central-2",
        "il-central-1",
        "ca-west-1",
        "ap-southeast-5",
        "ap-southeast-7",
        "mx-central-1",
    }
)


@dataclass(frozen=True)
class Source:
    title: str
    url: str
    verified: str = "verified"

    def cite(self) -> str:
        return f"{self.title}, {self.url} (checked {CHECKED}: {self.verified})"


@dataclass(frozen=True)
class Quota:
    key: str
    service: str
    name: str  # as Service Quotas names it, or what it is where it is not a Service Quotas quota
    unit: str
    default: float  # every region not listed in by_region
    adjustable: str  # "yes", "no", or what the source says about raising it
    source: Source
    by_region: dict[str, float] = field(default_factory=dict)
    burst: str = ""  # the bucket size, where a token bucket allows bursts above the rate
    to_raise: str = ""  # where it is not a Service Quotas request

    @property
    def how_to_raise(self) -> str:
        return self.to_raise or f"Service Quotas: {self.service}, '{self.name}'"

    def value(self, region: str) -> float:
        return self.by_region.get(region, self.default)


def _large_regions(value: float) -> dict[str, float]:
    return dict.fromkeys(LARGE_REGIONS, value)


DYNAMODB_QUOTAS = Source(
    "Quotas in Amazon DynamoDB, 'Throughput default quotas'",
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html",
    "verified: on-demand, per table, 40,000 read and 40,000 write request units",
)
WARM_THROUGHPUT = Source(
    "Understanding DynamoDB warm throughput in different scenarios",
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
    "verified: new on-demand tables start at 12,000 read and 4,000 write units per second; each partition takes "
    "1,000 write and 3,000 read units per second (so does a GSI's, per 'Key range throughput exceeded')",
)
STRIPE_LIMITS = Source(
    "Stripe: Rate limits",
    "https://docs.stripe.com/rate-limits",
    "verified: live mode 100 requests per second globally, 25 per second per API endpoint unless stated "
    "otherwise; increases through Stripe Support, 6 weeks ahead for large ones",
)
SFN_QUOTAS_ARCHIVED = Source(
    "AWS Step Functions Developer Guide, 'Quotas' (limits-overview): 'Quotas related to state throttling' and "
    "'Quotas related to API action throttling'",
    "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
    "read in the archived copy github.com/awsdocs/aws-step-functions-developer-guide doc_source/limits-overview.md "
    "(commit 28a1c16); the current page's table could not be read, its note that 'new AWS accounts have reduced "
    "state transition quotas' was; AWS may have raised these since: check Service Quotas",
)

TRANSACTION_CONFLICTS = Source(
    "Amazon DynamoDB Transactions: How it works, 'Transaction conflict handling in DynamoDB'",
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html",
    "verified (archived copy, awsdocs/amazon-dynamodb-developer-guide doc_source/transaction-apis.md): an item "
    "within a TransactWriteItems request that is part of another ongoing TransactWriteItems request conflicts, and the "
    "request fails with TransactionCanceledException; GetItem does not conflict. How long a transaction holds its "
    "items is not published: TRANSACTION_HOLD_MS is an assumption",
)
# How long one transaction holds its items, so that another on the same item conflicts (an assumption: AWS publishes no
# figure). A transaction prepares every item, then commits them (two rounds to the storage nodes); the hold spans
# about one transaction's own latency, taken as 10 ms. `--transaction-hold-ms` changes it; docs/capacity.md shows
# what 5 and 20 ms would mean.
TRANSACTION_HOLD_MS = 10.0
SES_QUOTAS = Source(
    "Service quotas in Amazon SES, 'Sending quotas'",
    "https://docs.aws.amazon.com/ses/latest/dg/quotas.html",
    "verified: 1 email per second in the sandbox; out of the sandbox the sending rate 'varies based on your specific "
    "use case' (SES no longer publishes a starting figure): the template's EmailSendRate is the account's",
)

QUOTAS: dict[str, Quota] = {
    q.key: q
    for q in [
        Quota(
            "apigw_account_rps",
            "API Gateway",
            "Throttle rate",
            "requests/s",
            10_000,
            "yes",
            Source(
                "Amazon API Gateway quotas",
                "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html",
                "verified, with the 2,500 RPS / 1,250 burst regions",
            ),
            by_region=dict.fromkeys(API_GATEWAY_LOW_REGIONS, 2_500),
            burst="burst 5,000 (1,250 in the lower regions), set by AWS, not requestable",
        ),
        Quota(
            "lambda_concurrency",
            "Lambda",
            "Concurrent executions",
            "executions",
            1_000,
            "yes (tens of thousands)",
            Source(
                "Lambda quotas",
                "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
                "verified; the page also says new accounts have reduced concurrency quotas",
            ),
        ),
        Quota(
            "lambda_scaling",
            "Lambda",
            "Concurrency scaling rate, per function (1,000 execution environments every 10 s)",
            "environments per 10 s",
            1_000,
            "no",
            Source("Lambda scaling behavior", "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html"),
            to_raise="no quota: provisioned concurrency (ready before the peak), or a gentler ramp",
        ),
        Quota(
            "sfn_start_execution",
            "Step Functions",
            "StartExecution throttle token refill rate (Standard)",
            "calls/s",
            150,
            "yes",
            SFN_QUOTAS_ARCHIVED,
            by_region=_large_regions(300),
            burst="bucket 1,300 (800 outside us-east-1, us-west-2, eu-west-1)",
        ),
        Quota(
            "sfn_state_transition",
            "Step Functions",
            "StateTransition throttle token refill rate (Standard)",
            "transitions/s",
            500,
            "yes",
            SFN_QUOTAS_ARCHIVED,
            by_region=_large_regions(1_500),
            burst="bucket 5,000 (800 outside us-east-1, us-west-2, eu-west-1)",
        ),
        Quota(
            "sfn_send_task_success",
            "Step Functions",
            "SendTaskSuccess throttle token refill rate",
            "calls/s",
            300,
            "yes",
            SFN_QUOTAS_ARCHIVED,
            by_region=_large_regions(500),
            burst="bucket 3,000 (1,500 outside us-east-1, us-west-2, eu-west-1)",
        ),
        Quota(
            "sfn_send_task_failure",
            "Step Functions",
            "SendTaskFailure throttle token refill rate",
            "calls/s",
            300,
            "yes",
            SFN_QUOTAS_ARCHIVED,
            by_region=_large_regions(500),
            burst="bucket 3,000 (1,500 outside us-east-1, us-west-2, eu-west-1)",
        ),
        Quota(
            "sfn_open_executions",
            "Step Functions",
            "Open executions (Standard)",
            "executions",
            1_000_000,
            "yes (millions)",
            Source(
                "Step Functions service quotas, 'Quotas related to accounts'",
                "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
                "verified in the current page (ko_kr translation) and the archived copy",
            ),
        ),
        Quota(
            "ddb_table_rru", "DynamoDB", "Table-level read throughput limit", "RRU/s", 40_000, "yes", DYNAMODB_QUOTAS
        ),
        Quota(
            "ddb_table_wru", "DynamoDB", "Table-level write throughput limit", "WRU/s", 40_000, "yes", DYNAMODB_QUOTAS
        ),
        Quota(
            "ddb_warm_rru",
            "DynamoDB",
            "Warm throughput of an on-demand table that never served more (reads)",
            "RRU/s",
            12_000,
            "yes, per table",
            WARM_THROUGHPUT,
            to_raise="template.yaml: the table's WarmThroughput.ReadUnitsPerSecond (pre-warming is billed once)",
        ),
        Quota(
            "ddb_warm_wru",
            "DynamoDB",
            "Warm throughput of an on-demand table that never served more (writes)",
            "WRU/s",
            4_000,
            "yes, per table",
            WARM_THROUGHPUT,
            to_raise="template.yaml: the table's WarmThroughput.WriteUnitsPerSecond (pre-warming is billed once)",
        ),
        Quota(
            "ddb_partition_wcu",
            "DynamoDB",
            "Write throughput of one partition (and of one item)",
            "WCU/s",
            1_000,
            "no",
            WARM_THROUGHPUT,
            to_raise="no quota: spread the writes over more partition keys",
        ),
        Quota(
            "ddb_partition_rcu",
            "DynamoDB",
            "Read throughput of one partition (and of one item)",
            "RCU/s",
            3_000,
            "no",
            WARM_THROUGHPUT,
            to_raise="no quota: spread the reads over more keys, or cache them",
        ),
        Quota(
            "ddb_item_transactions",
            "DynamoDB",
            "Transactions one item takes before its orders run out of retries (TransactionConflict)",
            "transactions/s",
            1000 / TRANSACTION_HOLD_MS,
            "no",
            TRANSACTION_CONFLICTS,
            to_raise="no quota: split the SKU's stock over shards (docs/capacity.md, 'One hot SKU')",
        ),
        Quota(
            "ses_send_rate",
            "SES",
            "Sending rate (emails per second)",
            "emails/s",
            1,
            "yes (an SES limit increase)",
            SES_QUOTAS,
            to_raise="the SES console: a sending-rate increase, then the template's EmailSendRate",
        ),
        Quota(
            "ddb_stream_readers",
            "DynamoDB Streams",
            "Processes reading one stream shard at a time",
            "readers",
            2,
            "no",
            Source(
                "AWS SDK for Kotlin, DynamoDB LimitExceededException",
                "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/dynamodb/"
                "aws.sdk.kotlin.services.dynamodb.model/-limit-exceeded-exception",
                "verified in the API's own error text ('More than 2 processes are reading from the same "
                "streams shard at the same time'); the Developer Guide's page not read",
            ),
            to_raise="no quota: one consumer per stream (fan out behind it)",
        ),
        Quota(
            "sqs_in_flight",
            "SQS",
            "In-flight messages per standard queue (approximately)",
            "messages",
            120_000,
            "by support request",
            Source(
                "Amazon SQS standard queue quotas",
                "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html",
            ),
            to_raise="a support request (or more queues)",
        ),
        Quota(
            "eventbridge_put_events",
            "EventBridge",
            "PutEvents throttle limit in transactions per second",
            "requests/s",
            400,
            "yes",
            Source(
                "Amazon EventBridge quotas, 'PutEvents throttle limit in transactions per second'",
                "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html",
                "verified for us-east-1 (10,000) and us-east-2 (2,400); us-west-2 and eu-west-1 are taken as "
                "10,000 (their invocation quota is us-east-1's) and every other region as 400, the lowest tier "
                "the archived page lists (others have 600, 1,200 or 2,400): not verified",
            ),
            by_region={"us-east-1": 10_000, "us-west-2": 10_000, "eu-west-1": 10_000, "us-east-2": 2_400},
        ),
        Quota(
            "stripe_endpoint",
            "Stripe",
            "Rate limit of one API endpoint, live mode (unless Stripe says otherwise)",
            "requests/s",
            25,
            "yes, through Stripe Support (6 weeks ahead for a large increase)",
            STRIPE_LIMITS,
            to_raise="Stripe Support: a rate limit increase, at least 6 weeks before the sale",
        ),
        Quota(
            "stripe_global",
            "Stripe",
            "Global API rate limit, live mode",
            "requests/s",
            100,
            "yes, through Stripe Support (6 weeks ahead for a large increase)",
            STRIPE_LIMITS,
            to_raise="Stripe Support: a rate limit increase, at least 6 weeks before the sale",
        ),
        Quota(
            "secrets_get_secret_value",
            "Secrets Manager",
            "Rate of GetSecretValue API requests",
            "requests/s",
            10_000,
            "not stated in what was read",
            Source(
                "AWS Secrets Manager increases API requests per second limits (What's New, 2025-03-04)",
                "https://aws.amazon.com/cn/about-aws/whats-new/2025/03/aws-secrets-manager-increases-api-requests-"
                "seconds",
                "verified (this Chinese copy): GetSecretValue up to 10,000 requests per second",
            ),
        ),
    ]
}

# How DynamoDB counts: a transactional write costs twice a plain one. (The walker of item sizes in
# benchmarks/order_cost.py applies it; the profile's units come from there.)
TRANSACTIONS_COST_DOUBLE = Source(
    "Amazon DynamoDB Transactions: How it works, 'Capacity management for transactions'",
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html",
    "verified (archived copy, awsdocs/amazon-dynamodb-developer-guide doc_source/transaction-apis.md): 'DynamoDB "
    "performs two underlying reads or writes of every item in the transaction: one to prepare the transaction and "
    "one to commit the transaction'",
)

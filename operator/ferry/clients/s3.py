"""The S3 client factory (boto3), for the operator's own S3 reads and bucket creation.

The search cluster reaches S3 with its own credentials (its keystore); the operator uses
boto3's default chain: environment, shared config, web identity (IRSA), instance role.
No credential is ever taken from a resource's spec or written anywhere.
"""

from __future__ import annotations

from typing import Any

from ferry.errors import FerryError


def endpoint_url(endpoint: str | None) -> str | None:
    """An endpoint as boto3 wants it: with a scheme (https unless one is given)."""
    if not endpoint:
        return None
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def s3_client(endpoint: str | None = None, region: str | None = None,
              path_style: bool = False, timeout: float = 30.0) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3},
        s3={"addressing_style": "path" if path_style else "auto"},
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url(endpoint), region_name=region or None, config=config)


def ensure_bucket(client: Any, bucket: str, region: str | None = None) -> bool:
    """Create the bucket if it does not exist. True if it was created.

    Raises FerryError (code S3Error) with the service's error code when S3 refuses.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise FerryError(f"cannot check bucket {bucket}: S3 answered {code}",
                             code="S3Error", retryable=code not in ("403", "AccessDenied")
                             ) from None
    except NoCredentialsError:
        raise FerryError(f"cannot check bucket {bucket}: the operator has no AWS credentials "
                         "(environment, web identity or instance role)",
                         code="CredentialsNotFound", retryable=False) from None
    except BotoCoreError as exc:
        raise FerryError(f"cannot reach S3 to check bucket {bucket}: {exc}",
                         code="S3Unreachable") from None
    kwargs: dict[str, Any] = {"Bucket": bucket}
    # us-east-1 is the one region that refuses an explicit LocationConstraint.
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("BucketAlreadyOwnedByYou",):
            return False
        raise FerryError(f"cannot create bucket {bucket}: S3 answered {code}",
                         code="S3Error", retryable=False) from None
    except BotoCoreError as exc:
        raise FerryError(f"cannot reach S3 to create bucket {bucket}: {exc}",
                         code="S3Unreachable") from None
    return True

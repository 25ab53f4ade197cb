"""What each setting and model field means: the text of the settings reference (docs/settings.md, written by
`python -m ops.docs` and checked by the tests against the code, so it cannot drift). Defaults are not written here:
they are read from Settings and ModelSpec themselves (DEFAULT_SHOWN only where a default needs words). Plain data,
no aws_cdk."""

from __future__ import annotations

# (setting names, what they mean), in the order the reference lists them.
SETTINGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (('stack_name',),
     'stack name; set another to run two deployments side by side'),
    (('region',),
     'pin the stack to a region; unset gives an environment-agnostic template'),
    (('models',),
     'the models to deploy, by preset or `model_specs` name (see [Models](#models)); their fields via '
     '`<model>.<field>`'),
    (('model_specs',),
     'your own models, a JSON object of name → fields'),
    (('hub_token_secret',),
     'Secrets Manager secret (name or complete ARN) with a Hub token, for gated models. Code that downloads its own '
     "weights (Stable Diffusion) reads it with the endpoint's role; containers that read the token from their "
     "environment (TGI, the toolkit's `HF_MODEL_ID` download) get a CloudFormation dynamic reference. Never in the "
     'template (see Threat model)'),
    (('hub_token_field',),
     'the key of the token when `hub_token_secret` holds a JSON object (`{"HF_TOKEN": "hf_..."}` → `HF_TOKEN`): '
     'only that value reaches the model, never the whole secret; `make preflight` refuses a JSON secret without it'),
    (('image_expiry_days',),
     'generated images are deleted after this many days'),
    (('retain_bucket',),
     'keep the bucket and its images on `cdk destroy`'),
    (('kms_key_arn',),
     "customer KMS key (`key/<uuid>` or multi-Region `key/mrk-…`) of the stack's region, for the bucket, and for "
     'the endpoint volume on types without NVMe storage; another region is refused at synth (with `region` set) or '
     'before anything is created (a template rule)'),
    (('url_ttl_seconds',),
     'presigned URL lifetime (60–3000, see Limits)'),
    (('api_timeout_seconds',),
     'API Gateway integration timeout (12–29); the Lambda gets 1 s less, the model read 7 s less'),
    (('stream_timeout_seconds',),
     "the longest a streaming model's answer may take (`<model>.streaming=true`, 30–895): its routes' integration "
     "timeout (API Gateway streams up to 15 minutes) and its Lambda's, with 5 s more; an answer still going then "
     'ends with a `stream_timeout` error event'),
    (('throttle_rate',),
     'requests per second for the API key (its usage plan)'),
    (('throttle_burst',),
     'burst for the API key'),
    (('stage_throttle_rate', 'stage_throttle_burst'),
     "the stage's limit per method, shared by every caller (keyed or not, valid key or not); must stay above the "
     "key's, so callers without a key cannot use up what a key holder may send; with `auth=iam` or `cognito` the "
     'only limit'),
    (('keyless_throttle_rate', 'keyless_throttle_burst'),
     'the limit of each method that needs no key: `GET /openapi.json` and, with `cors_origins`, each CORS preflight '
     '(`OPTIONS`)'),
    (('authorizer_concurrency',),
     'Lambda concurrency reserved for the key authorizer (`bearer_keys`), its guarantee and its ceiling; `0` '
     "reserves none. Lambda keeps 100 of the account's concurrency unreserved, and a new account may have only 10 "
     'in all: `make preflight` says when the reservation does not fit'),
    (('daily_quota',),
     'requests per day for the API key'),
    (('auth',),
     'who may call: `api_key` (the key and its usage plan), `iam` (SigV4 of principals with the `InvokePolicyArn` '
     "policy) or `cognito` (a user pool's ID tokens); see [Auth options](#auth-options)"),
    (('bearer_keys',),
     "`auth=api_key`: the key may also come as `Authorization: Bearer <key>` (the openai SDK's way), read by a "
     "Lambda authorizer that hands it to API Gateway's own key check; `false`: `x-api-key` only, no authorizer"),
    (('cognito_user_pool_arn',),
     '`auth=cognito`: the existing user pool whose ID tokens are accepted'),
    (('domain_name', 'certificate_arn'),
     'the API at `https://<domain_name>/` (a regional custom domain, TLS 1.2, the same routes with no stage in the '
     "path); the certificate an ACM certificate for that name in the stack's region; output `CustomDomainTarget` is "
     'where to point your DNS'),
    (('hosted_zone_id',),
     'with `domain_name`: a Route 53 hosted zone of yours that gets the alias A record itself'),
    (('waf',),
     "`true`: an AWS WAF web ACL on the stage: a rate limit per client IP (`429` in the API's error shape) and "
     "AWS's managed common rule set (its 8 KB body rule counted, not blocking: the API's own limits are larger); "
     '~$7 a month plus $0.60 per million requests (`make cost`)'),
    (('waf_rate_limit',),
     '`waf`: requests one client IP may send in any 5 minutes (10–2,000,000,000)'),
    (('cors_origins',),
     'web origins browsers may call the API from, comma-separated '
     '(`https://app.example.com,http://localhost:3000`), or `*` for any: every resource answers CORS preflight '
     "(`OPTIONS`, no key), and answers (the Lambdas' and the gateway's own errors) name an allowed origin back (see "
     '[Browsers](#browsers))'),
    (('api_logging',),
     "API access logs: `account-role` (the account's API Gateway CloudWatch role, which must exist: preflight "
     'checks), `create-role` (the stack creates that account-wide role and setting; both stay after destroy), `off` '
     '(see [Deploy](#deploy-call-destroy))'),
    (('shared_instances',),
     'instances of the one endpoint every `hosting=shared` model runs on, to start with (its type is theirs: they '
     'must name one `instance_type`)'),
    (('shared_max_instances',),
     'at most this many instances: above `shared_instances`, SageMaker adds instances as copies need room (managed '
     'instance scaling)'),
    (('vpc',),
     "`create`: a VPC of the stack's own with private subnets in two zones, no internet gateway, no NAT, flow logs; "
     'endpoints and Lambdas run in it (see [Private networking](#private-networking))'),
    (('vpc_id', 'subnet_ids', 'route_table_ids'),
     'a VPC of yours instead: its id, at least two of its subnets in different zones (comma-separated), and their '
     'route tables (for the S3 gateway endpoint)'),
    (('vpc_endpoints',),
     'create the VPC endpoints (S3 gateway; interface endpoints for SageMaker runtime, CloudWatch Logs, and STS, '
     'Secrets Manager, X-Ray where the features call them); `false` for a VPC of yours that has them all already'),
    (('vpc_endpoints_skip',),
     'endpoints a VPC of yours has already, comma-separated (`s3`, `sagemaker.runtime`, `logs`, `sts`, '
     '`secretsmanager`, `xray`): the stack makes the others. A second interface endpoint with private DNS, or a '
     'second S3 gateway endpoint on a route table, fails the deploy; `make preflight` names the ones to skip'),
    (('vpc_endpoint_policies',),
     '`restrict`: each endpoint the stack makes lets only its own calls through; `open`: AWS\'s default policy. '
     'Default: `restrict` for `vpc=create`, `open` for a VPC of yours, whose other workloads use the same '
     'endpoints (see [Private networking](models.md#private-networking))'),
    (('log_retention_days',),
     'retention of every log group (a CloudWatch value: 1, 3, 5, 7, 14, 30, 60, 90, …)'),
    (('log_level',),
     "the Lambdas' application log level, `INFO` or `DEBUG` (each request's JSON log line carries its metrics and "
     'is `INFO`, so nothing higher is offered); `DEBUG` adds a line per model call with its sizes and time; '
     'botocore and the other libraries stay at `WARNING` either way, since their debug lines would carry prompts '
     'and signed URLs'),
    (('tracing',),
     'X-Ray tracing of the API stage and every Lambda (`true`): a trace per request, from the gateway through the '
     "Lambda to its SageMaker call; the Lambdas' roles then hold the two X-Ray actions AWS allows only on `*`"),
    (('snapstart',),
     'Lambda SnapStart for the model Lambdas (`true`): each deploy publishes a version that Lambda snapshots after '
     'init (imports done, AWS clients built), new execution environments resume from that snapshot instead of '
     "initializing, and the API calls each function's alias `live`; Lambda bills the snapshot's cache and each "
     "restore per GB (not in `make cost`'s table); no provisioned concurrency with it"),
    (('alarm_email',),
     'who is told when an alarm fires or clears: an SNS topic (encrypted with its own KMS key) with this email '
     'subscribed (confirm the email AWS sends); without it the alarms still exist and show on the dashboard'),
    (('alarm_api_5xx_percent',),
     'the API alarm fires when more than this share of requests fail with a 5xx in 5 minutes'),
    (('alarm_endpoint_5xx',),
     "a model's alarm fires at this many failed model invocations in 5 minutes"),
    (('alarm_latency_percent',),
     "a model's latency alarm fires when its p90 passes this share of the time a request has (10 minutes)"),
    (('alarm_gpu_memory_percent',),
     "a GPU model's alarm fires when its GPU memory passes this (10 minutes)"),
    (('alarm_job_age_seconds',),
     "an async model's alarm fires when a job has waited this long"),
    (('alarm_instance_hours',),
     "a model's alarm fires when its instances ran this many instance-hours in a day beyond what its minimum runs "
     '(24 × `min_instances`, 0 for a model that scales to zero): what a busy day or a leaked key costs shows the '
     'same day'),
    (('monthly_budget_usd',),
     "an AWS Budgets cost budget on the account's SageMaker spend: `alarm_email` is told at 80% of it and when the "
     'month is forecast to pass it (AWS Billing User Guide: the first two budgets of an account are free, each '
     'further one $0.02 a day)'),
    (('max_prompt_chars',),
     'longest prompt and negative prompt'),
    (('min_size', 'max_size', 'default_size'),
     'image side bounds and default (multiples of 8)'),
    (('max_steps', 'default_steps'),
     'inference step bounds and default'),
    (('max_images',),
     'images per request'),
    (('max_guidance_scale', 'default_guidance_scale'),
     'guidance scale bound and default'),
    (('max_input_chars',),
     'longest text input, chat message or embeddings input'),
    (('max_new_tokens', 'default_max_new_tokens'),
     'generated tokens bound and default (generation and chat)'),
    (('max_batch_inputs',),
     'texts per embeddings request'),
    (('max_messages',),
     'messages per chat request'),
)

# A default said in words where its value alone would mislead (None, or another setting's value).
DEFAULT_SHOWN = {"region": "(the CLI's region)", "model_specs": "none", "kms_key_arn": "none (SSE-S3)",
                 "shared_max_instances": "`shared_instances`"}

# (model field names, what they mean): -c <model>.<field>=value, or model_specs in cdk.json.
MODEL_FIELDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (('kind',),
     '`text-to-image`, `text-generation`, `embeddings` or `chat`'),
    (('source',),
     '`hub:<org/model>` (weights downloaded at container start), `s3://<bucket>/<key>.tar.gz` (a trained artifact, '
     'optionally with `code/inference.py` and `code/requirements.txt`), or `endpoint:<name>` (an existing endpoint)'),
    (('code',),
     'a repo folder with `inference.py`, packaged into a deterministic `model.tar.gz` at synth time'),
    (('container',),
     '`hf-inference` (GPU or CPU variant by instance), `hf-inference-gpu`, `hf-inference-cpu`, `tgi`, or any ECR '
     'image URI'),
    (('hosting',),
     '`realtime` (instances, default), `serverless`, `async` or `shared` (see [Hosting modes](#hosting-modes))'),
    (('instance_type',),
     'hosting instance type (realtime); GPU-only containers are refused on CPU instances at synth'),
    (('min_instances', 'max_instances'),
     'realtime: instances at deploy (`instance_count` is the older name; default 1) and the autoscaling ceiling '
     '(default: the minimum, no autoscaling; at most 100); async: the floor (default **0**: no instance while idle) '
     'and ceiling (default 1) of the backlog scaling'),
    (('target_invocations', 'scale_in_cooldown_seconds', 'scale_out_cooldown_seconds'),
     'realtime autoscaling: invocations per instance per minute to hold (default per kind: images 10, generation '
     'and chat 30, embeddings 300), cooldowns (900 s, 300 s)'),
    (('target_backlog', 'job_timeout_seconds', 'job_ttl_seconds', 'max_concurrent_invocations'),
     'async: jobs waiting per instance to hold (default per kind: images 5, generation and chat 20, embeddings '
     '100), how long one job may run on the model (1–3600 s, default 900; image requests are bounded by it instead '
     'of the 29 s API limit), how long it may wait in the queue (60–21600 s, default 6 h), jobs one instance runs '
     'at once (default 1)'),
    (('cpu_cores', 'accelerators'),
     'shared: CPU cores (default 1) and GPUs (default 1 for a model that needs a GPU on a GPU instance, else none) '
     'one copy reserves; `memory_mb` is the memory it reserves (default 1024); `min_instances`/`max_instances` '
     'count its copies (default 1/1; autoscaled on invocations per copy when they differ; `min_instances=0` scales '
     'to zero copies when idle)'),
    (('memory_mb', 'max_concurrency', 'provisioned_concurrency'),
     'serverless: memory (1024–6144 in 1024 steps, default 4096; refused for realtime and async, whose memory is '
     "the instance type's), concurrent invocations (1–200, default 5), instances kept warm (none by default; billed "
     'while deployed)'),
    (('weights_gb',),
     "size of the model's weights on CPU (fp32); serverless refuses a model whose weights × 1.5 + 1 GB exceeds its "
     'memory (presets set it)'),
    (('task',),
     '`HF_TASK` for a Hub model with no code'),
    (('revision',),
     'Hub revision (commit or tag); every preset pins a commit (`deployment/model_catalog.py` `REVISIONS`), so an '
     'instance that starts next month loads what was tested, not whatever the repository holds then'),
    (('startup_timeout_seconds',),
     'container startup health check (60–3600)'),
    (('volume_size_gb',),
     'ML storage volume; refused on NVMe instance types (g4dn, g5, p4d, ...)'),
    (('max_input_tokens', 'max_total_tokens'),
     'TGI limits (they also bound `max_new_tokens`, see The API)'),
    (('download_by',),
     "who fetches `hub:` weights at start: `container` (the toolkit's or TGI's `HF_MODEL_ID`) or `code` (the "
     "model's `model_fn`, only the files it needs; Stable Diffusion's preset)"),
    (('seconds_per_step',),
     'image models: seconds of one 512×512 denoising step on the instance (default from the instance family)'),
    (('network_isolation',),
     "`true`: the container runs with no network at all (SageMaker's `EnableNetworkIsolation`); only for weights "
     'from an `s3://` artifact, refused at synth for a model that downloads from the Hub'),
    (('allow_pickle_weights',),
     "`true`: the model may load pickle weights (`.bin`, `.pt`, `.ckpt`), which run their author's code when "
     'loaded. Default `false`: safetensors only: our inference code loads nothing else (`use_safetensors`), Stable '
     "Diffusion's download refuses a component with only `.bin` weights by name, and `make preflight` blocks a Hub "
     "model whose revision has no safetensors (TGI and the toolkit's own download would load the pickles)"),
    (('streaming',),
     "`true`: the model's answers stream (see [Streaming](#streaming)): tokens as they are made (`stream: true`, "
     '`/generate_stream`), image progress events, and `stream_timeout_seconds` instead of the 29 s limit. Off by '
     'default until you have seen it work in your account; refused for embeddings (nothing to stream), with '
     '`hosting=async` and with `snapstart`'),
    (('batch', 'batch_timeout_seconds'),
     '`batch=true`: a SageMaker model of its own for batch transform jobs (`make batch`, see [Batch '
     'jobs](#batch-jobs)); how long the model may take over one input line (1–3600 s, default 600)'),
    (('protocol',),
     'how the API talks to the model; derived from kind, source and container'),
    (('environment',),
     'extra container environment (JSON object)'),
)

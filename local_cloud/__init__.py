"""The Docker-free local cloud: moto for AWS, the real handlers in-process, all driven by template.yaml.

template.py   reads template.yaml and resolves its intrinsics (!Ref, !GetAtt, !Sub, ...)
cloud.py      starts moto on loopback and creates every resource the template declares
functions.py  runs the template's functions in-process, for API calls, Step Functions, SQS and Invoke
gateway.py    the API Gateway HTTP API emulation (payload format 2.0, CORS, JWT authorizers)
authorizer.py API Gateway's JWT authorizer, as the gateway enforces the template's
user_pool.py  the authorizer's Cognito user pool in moto: the seeded operator, tokens for scripts and tests
moto_fixes.py what moto gets wrong and AWS does not (documented, tested)
demo_data.py  the demo catalog
__main__.py   `python -m local_cloud serve | invoke`
"""

"""The CDK app of the GameLift Streams session archiver: small constructs composed by `infra.stack`."""

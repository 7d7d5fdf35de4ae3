//! The operations the fake answers, each by its AWS name: what calls are counted by and
//! failures injected for.

/// Every AWS operation the fake answers, by its AWS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    // EC2
    DescribeInstances,
    StartInstances,
    StopInstances,
    // ECS
    DescribeServices,
    TagResource,
    UpdateService,
    // ELBv2 target health
    DescribeTargetHealth,
    DescribeTargetGroups,
    // EC2 Auto Scaling
    DescribeAutoScalingGroups,
    UpdateAutoScalingGroup,
    CreateOrUpdateTags,
    // RDS
    DescribeDBInstances,
    DescribeDBClusters,
    StartDBInstance,
    StartDBCluster,
    StopDBInstance,
    StopDBCluster,
    // ELBv2 listeners and rules
    DescribeRules,
    DescribeTags,
    DescribeListeners,
    CreateRule,
    ModifyRule,
    SetRulePriorities,
    DeleteRule,
    // CloudWatch
    GetMetricData,
    // EventBridge
    PutEvents,
    // DynamoDB
    Scan,
    GetItem,
    PutItem,
}

impl Op {
    /// The operation's AWS name, as a [`crate::cloud::CloudError`] names it.
    pub fn name(self) -> &'static str {
        match self {
            Op::DescribeInstances => "DescribeInstances",
            Op::StartInstances => "StartInstances",
            Op::StopInstances => "StopInstances",
            Op::DescribeServices => "DescribeServices",
            Op::TagResource => "TagResource",
            Op::UpdateService => "UpdateService",
            Op::DescribeTargetHealth => "DescribeTargetHealth",
            Op::DescribeTargetGroups => "DescribeTargetGroups",
            Op::DescribeAutoScalingGroups => "DescribeAutoScalingGroups",
            Op::UpdateAutoScalingGroup => "UpdateAutoScalingGroup",
            Op::CreateOrUpdateTags => "CreateOrUpdateTags",
            Op::DescribeDBInstances => "DescribeDBInstances",
            Op::DescribeDBClusters => "DescribeDBClusters",
            Op::StartDBInstance => "StartDBInstance",
            Op::StartDBCluster => "StartDBCluster",
            Op::StopDBInstance => "StopDBInstance",
            Op::StopDBCluster => "StopDBCluster",
            Op::DescribeRules => "DescribeRules",
            Op::DescribeTags => "DescribeTags",
            Op::DescribeListeners => "DescribeListeners",
            Op::CreateRule => "CreateRule",
            Op::ModifyRule => "ModifyRule",
            Op::SetRulePriorities => "SetRulePriorities",
            Op::DeleteRule => "DeleteRule",
            Op::GetMetricData => "GetMetricData",
            Op::PutEvents => "PutEvents",
            Op::Scan => "Scan",
            Op::GetItem => "GetItem",
            Op::PutItem => "PutItem",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

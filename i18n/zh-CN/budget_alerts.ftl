# 预算提醒：组织某个周期的预算用到 80% 和 100% 时，发给组织的所有者和管理员（团队预算还发给团队负责人）；
# 成员在团队中的个人上限用完时发给该成员。
mail-budget-period-daily = 每日
mail-budget-period-weekly = 每周
mail-budget-period-monthly = 每月
mail-budget-period-quarterly = 每季度

mail-budget-team-subject = { $org }：团队 { $team } 的{ $period }预算已用 { $percent }%
mail-budget-team-text =
    { $name }，你好：

    { $org } 的团队 { $team } 已花费 { $spent }，其{ $period }预算为 { $limit }（{ $percent }%）。
    { $level ->
        [full] 在预算重新开始之前，该团队的密钥都将被拒绝。
       *[near] 预算用完后，在其重新开始之前，该团队的密钥都将被拒绝。
    }
    预算将于 { $resets }（{ $zone }）重新开始。

    查看团队：{ $link }

    你作为 { $org } 的所有者、管理员或该团队的负责人收到此邮件：每个周期的预算在用到 80% 和 100% 时各发送一次。

mail-budget-org-subject = { $org }：组织的{ $period }预算已用 { $percent }%
mail-budget-org-text =
    { $name }，你好：

    { $org } 已花费 { $spent }，组织的{ $period }预算为 { $limit }（{ $percent }%）。
    { $level ->
        [full] 在预算重新开始之前，该组织的所有团队密钥都将被拒绝。
       *[near] 预算用完后，在其重新开始之前，该组织的所有团队密钥都将被拒绝。
    }
    预算将于 { $resets }（{ $zone }）重新开始。

    查看组织：{ $link }

    你作为 { $org } 的所有者或管理员收到此邮件：每个周期的预算在用到 80% 和 100% 时各发送一次。

mail-budget-cap-subject = { $org }：你在团队 { $team } 的{ $period }上限已用完
mail-budget-cap-text =
    { $name }，你好：

    你在 { $org } 的团队 { $team } 中已花费 { $spent }，你的{ $period }上限为 { $limit }。
    在上限于 { $resets }（{ $zone }）重新开始之前，你在该团队的密钥将被拒绝；你的个人密钥不受影响。
    团队负责人可以提高你的上限。

    查看团队：{ $link }

"""English terms of the rule-of-law report genre, mapped to the Chinese the reports use.

English questions find passages through the multilingual embeddings, but keyword search and
extractive sentence matching need the reports' own words. This glossary is the genre's
standard vocabulary (法治政府建设年度报告 terms, as in official English translations), not a
list tuned to particular questions; words it does not know are simply not matched.
"""

from __future__ import annotations

import re

# English phrase (lower case, singular) -> Chinese terms. Longer phrases win over shorter ones.
GLOSSARY: dict[str, str] = {
    "administrative reconsideration": "行政复议",
    "reconsideration": "复议",
    "administrative litigation": "行政诉讼",
    "administrative lawsuit": "行政诉讼",
    "lawsuit": "诉讼",
    "litigation": "诉讼",
    "appear in court": "出庭应诉",
    "appeared in court": "出庭应诉",
    "appearance in court": "出庭应诉",
    "court appearance": "出庭应诉",
    "loss rate": "败诉率",
    "lost": "败诉",
    "correction": "纠错",
    "direct correction": "直接纠错",
    "people's mediation": "人民调解",
    "mediation": "调解",
    "mediate": "调解",
    "pre-litigation mediation": "诉前调解",
    "dispute": "纠纷 争议",
    "administrative dispute": "行政争议",
    "success rate": "成功率",
    "legal aid": "法律援助",
    "public legal service": "公共法律服务",
    "legal service": "法律服务",
    "economic loss": "经济损失",
    "audit": "审计",
    "audit project": "审计项目",
    "recommendation": "建议",
    "suggestion": "建议",
    "proposal": "提案",
    "deputy": "代表",
    "people's congress": "人大",
    "cppcc": "政协",
    "law enforcement": "执法",
    "administrative law enforcement": "行政执法",
    "enforcement supervision": "执法监督",
    "supervision": "监督",
    "inspection": "检查 抽查",
    "random inspection": "双随机 抽查",
    "case file": "案卷",
    "case": "案件",
    "new case": "新收 案件",
    "received": "新收 受理",
    "receive": "新收 受理",
    "accepted": "受理",
    "concluded": "办结",
    "closed": "办结",
    "regulation": "规章 条例 办法",
    "government regulation": "政府规章",
    "normative document": "规范性文件",
    "repeal": "废止",
    "repealed": "废止",
    "legislation": "立法",
    "legal adviser": "法律顾问",
    "legal review": "合法性审查",
    "major administrative decision": "重大行政决策",
    "decision": "决定 决策",
    "petition": "信访",
    "letters and visits": "信访",
    "business environment": "营商环境",
    "market entity": "市场主体",
    "enterprise": "企业",
    "registration": "登记",
    "online": "网办 网上 在线",
    "government service": "政务服务",
    "hotline": "热线",
    "information disclosure": "信息公开",
    "government information": "政府信息",
    "disclosure": "公开",
    "asset seizure": "查封",
    "seizure": "查封",
    "consumption restriction": "限制消费",
    "person-time": "人次",
    "training": "培训",
    "official": "干部",
    "leading official": "领导干部",
    "model city": "示范市",
    "demonstration": "示范",
    "pilot": "试点",
    "fengqiao": "枫桥",
    "judicial office": "司法所",
    "rule of law": "法治",
    "publicity": "宣传",
    "credit": "信用",
    "penalty": "处罚",
    "fine": "罚款",
    "permit": "许可",
    "license": "许可证",
    "certificate": "证照",
    "rate": "率",
    "percentage": "率",
    "growth": "增长",
    "increase": "增长",
    "year-on-year": "同比",
    # Mediation, legal services and the justice system.
    "mediator": "调解员",
    "people's mediator": "人民调解员",
    "mediation organization": "调解组织",
    "mediation organisation": "调解组织",
    "lawyer": "律师",
    "law firm": "律师事务所",
    "chamber of commerce": "商会",
    "pro bono": "公益",
    "legal consultation": "法律咨询",
    "legal advice": "法律咨询",
    "notarization": "公证",
    "notarisation": "公证",
    "notary": "公证",
    "arbitration": "仲裁",
    "judicial appraisal": "司法鉴定",
    "community correction": "社区矫正",
    "court": "法院",
    "procuratorate": "检察院",
    "justice bureau": "司法局",
    "intellectual property": "知识产权",
    "emerging field": "新兴领域",
    # Government services, approvals and complaints.
    "mayor's mailbox": "市长信箱",
    "mayor": "市长",
    "mailbox": "信箱",
    "message": "留言",
    "approval": "审批",
    "administrative approval": "行政审批",
    "time limit": "时限",
    "processing time": "时限",
    "complaint": "投诉",
    "whistleblowing": "举报",
    "tip-off": "举报",
    "one-stop": "一站式",
    "certification-free": "无证明",
    "hearing": "听证",
    # Rule-making, review and oversight.
    "fair competition": "公平竞争",
    "fair competition review": "公平竞争审查",
    "policy measure": "政策措施",
    "enterprise-related": "涉企",
    "review": "审查 审核",
    "filing": "备案",
    "rectification": "整改",
    "accountability": "问责",
    "list of powers": "权责清单",
    "administrative penalty": "行政处罚",
    "law enforcement officer": "执法人员",
    "law enforcement personnel": "执法人员",
    "emergency": "应急",
    "food safety": "食品安全",
    "work safety": "安全生产",
    "ecological environment": "生态环境",
    "grassroots": "基层",
    "township": "乡镇",
    "community": "社区",
    "foreign-related": "涉外",
    "law popularization": "普法",
    "law popularisation": "普法",
    "legal education": "普法",
    "executive meeting": "常务会议",
    "volunteer": "志愿者",
}

_PLURAL = re.compile(r"(?<=[a-z])(ies|s)\b")


def _singular(text: str) -> str:
    return _PLURAL.sub(lambda m: "y" if m.group(1) == "ies" else "", text)


_PATTERNS = sorted(((re.compile(r"\b" + re.escape(_singular(k)) + r"\b"), v) for k, v in GLOSSARY.items()),
                   key=lambda kv: -len(kv[0].pattern))


def english_to_chinese(text: str) -> str:
    """The Chinese terms (and numbers) of an English question, space-separated.

    Example:
        >>> english_to_chinese("How many legal aid cases did Mianyang handle?")
        '法律援助 案件'
    """
    remaining = _singular(text.lower().replace("’", "'"))
    found: list[str] = []
    for pattern, chinese in _PATTERNS:
        if pattern.search(remaining):
            found.append(chinese)
            remaining = pattern.sub(" ", remaining)
    numbers = re.findall(r"\d+(?:\.\d+)?%?", remaining)
    return " ".join(found + numbers)

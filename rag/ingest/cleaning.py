"""Remove web-page debris from report text and normalise widths and whitespace.

Government sites wrap each report in breadcrumbs, font-size widgets, QR-code hints,
footers (主办/承办/ICP备/网站标识码/版权所有), "相关信息" link lists, and often print the
footer at the top as well as the bottom. Rules are written on the *matching form* of each
line, so the traditional-character versions (掃一掃在手機打開當前頁) are caught too.
Lines that carry metadata (来源, 发布日期) are removed from the text but handed on, so the
metadata detector can still read the publisher and date from them. Control and zero-width
characters go, and so do sentences that give orders to an AI model (prompt injection): they
are listed in ``CleanedText.instructions`` for the ingest warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.ingest.loaders import LoadedDocument
from rag.text.sentences import sentence_pieces
from rag.text.normalize import matching_form, normalise_stored

# A line matching any of these is debris wherever it appears.
_DEBRIS_LINE = [re.compile(p) for p in (
    r"^(您|你)?(当前|现在)?(的)?(所在)?位置[:：]",  # breadcrumbs
    r"^首页\s*[>＞»/]",
    r"字号[:：]\s*[\[【(]?|字号\s*[\[【]",
    r"字体[:：]?\s*[\[【(]?\s*(大|小)",
    r"^[\[【(]?\s*(大|中|小)\s*[\]】)]?(\s*[\[【(]?\s*(大|中|小)\s*[\]】)]?){2}$",
    r"扫一扫.{0,6}(手机|移动端)",
    r"^(用手机|请用手机|手机)?扫(描|一扫)?(下方|右侧)?二维码",
    r"^主办(单位)?[:：]",
    r"^承办(单位)?[:：]",
    r"^(技术)?支持(单位)?[:：]",
    r"^(网站)?维护(单位)?[:：]",
    r"icp(备|证)",
    r"公网安备",
    r"网站标识码",
    r"版权所有",
    r"^copyright",
    r"涉密(文件|信息)?严禁上网",
    r"(浏览器|分辨率).{0,30}(最佳|浏览效果|显示效果)",
    r"^([\[【(]?\s*(打印本页|打印|关闭窗口|关闭|收藏本页|收藏|分享到|分享|返回顶部|返回)\s*[\]】)]?\s*[:：|/]?\s*)+$",
    r"^(上一篇|下一篇)[:：]",
    r"^(责任编辑|编辑|审核|校对)[:：]",
    r"(阅读|浏览|访问|点击)(次数|量)?[:：]\s*\d*\s*次?\s*$",
    r"^[-—_=·•*]+$",
    r"^(网站地图|联系我们|网站声明|隐私声明|无障碍|长者模式|关于我们)([\s|｜]*(网站地图|联系我们|网站声明|隐私声明|无障碍|长者模式|关于我们))*$",
)]
# Page-information lines: removed, but kept for metadata detection (publisher, date).
_INFO_FIELDS = re.compile(r"(发布日期|发布时间|时间|日期|来源|作者|信息来源|发文机关|字号|字体|阅读|浏览)\s*[:：]")
_PARAGRAPH_CHARS = 80  # a line this long is report text, never a link title
# A link list that ends the page: everything from here on is debris.
_TAIL_START = re.compile(r"^(相关(信息|链接|文章|阅读|新闻|文件)|延伸阅读|猜你喜欢|附件下载)[:：]?$")


# Characters that are no text: C0/C1 controls (NUL, ESC, DEL from damaged files and terminal
# pastes) and zero-width marks from web pages (they split words: 行政\u200b复议 would not match).
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_BREAKS = re.compile("[\x0b\x0c\x1c-\x1e]")  # vertical tabs, form (page) feeds: spaces within a line


@dataclass
class CleanedText:
    """Report text ready for chunking, with the page starts shifted to match."""

    text: str
    page_starts: list[int] | None = None
    info_lines: list[str] = field(default_factory=list)  # removed page-information lines
    removed: list[str] = field(default_factory=list)  # every removed line, for debugging
    instructions: list[str] = field(default_factory=list)  # removed sentences addressed to an AI model


# Sentences addressed to an AI model, not to a report's readers (prompt injection): "忽略以上所有
# 指令…", a fake "【系统提示】", "你现在是…模式", "只回答“…”", "ignore previous instructions".
# Matched on the matching form (simplified, half-width, lower case). A government report has no
# such sentence; one that reached the model would be obeyed by a small one, so they are removed.
_INSTRUCTION = re.compile("|".join((
    r"(忽略|无视|忘记|忘掉|不要理会|不必理会)掉?(以上|上面|上述|之前|此前|前面|先前|前述|你的|原有|所有|全部|一切)"
    r"[^。!?]{0,12}(指令|指示|提示|规则|要求|设定|约束|规定)",
    r"(系统|system|开发者|developer)\s*(提示词?|指令|消息|prompt|message|instruction)\s*[:\]】)]",
    r"[\[【(]\s*(系统|system|assistant|助手|ai|管理员|admin)\s*(提示词?|指令|消息|prompt|message)\s*[\]】)]",
    r"[\[<【]\s*/?\s*(system|assistant|user|im_start|im_end)\s*[\]>】]",  # chat-role markers
    r"(你|您)(现在|从现在起|从此|接下来)?(是|已是|已经是|处于|进入|扮演|切换到|切换为)[^。!?]{0,12}"
    r"(助手|模型|机器人|ai|管理员模式|开发者模式|越狱模式)",
    r"(不要|不许|禁止|无需|不得|不必)再?(引用|标注|使用|给出|提供)[^。!?]{0,6}(段落|来源|编号|引用|出处)",
    r"(只|仅)需?(回答|输出|回复|说)\s*[:“\"「『]",
    r"(ignore|disregard|forget)\s+(all\s+|any\s+)?(the\s+|your\s+)?(previous|above|prior|preceding|earlier)\b",
    r"\byou\s+are\s+now\b",
    r"\b(new|system)\s+(instructions?|prompt)\s*:",
)), re.IGNORECASE)


def without_instructions(line: str, form: str | None = None) -> tuple[str, list[str]]:
    """The line without its sentences that give orders to an AI model; and those sentences.

    Args:
        line: a line of report text.
        form: its matching form, if already computed.
    """
    if not _INSTRUCTION.search(matching_form(line) if form is None else form):
        return line, []
    kept, found = [], []
    for sentence in sentence_pieces(line):
        if _INSTRUCTION.search(matching_form(sentence)):
            found.append(sentence.strip())
        else:
            kept.append(sentence)
    return "".join(kept).strip(), found


def is_debris(line: str) -> bool:
    """True when a line (any script) is web-page furniture rather than report text."""
    form = matching_form(line)
    # Page furniture is short and never a finished sentence; a report paragraph that merely
    # mentions 二维码 or 版权所有 must stay.
    if not form or len(form) > 120 or (form.endswith("。") and len(form) > 12):
        return False
    return any(p.search(form) for p in _DEBRIS_LINE)


def is_info_line(line: str) -> bool:
    """True for page-information lines such as "发布日期: 2025-03-11  来源: 绵阳市司法局"."""
    form = matching_form(line)
    return len(form) < 200 and len(_INFO_FIELDS.findall(form)) >= 2 or bool(
        re.match(r"^(来源|信息来源|发布日期|发布时间)\s*[:：]", form) and len(form) < 80)


# Size: one pass over the lines in reading order; each step is a named predicate above, what
# stays here is their order, which matters (debris before joining broken lines).
def clean(document: LoadedDocument) -> CleanedText:
    """Remove debris lines, repeated headers/footers and link tails; normalise whitespace.

    Example:
        >>> clean(LoadedDocument(Path("a.txt"), "当前位置:首页 > 通告\\n正文。\\n版权所有", "txt")).text
        '正文。'
    """
    text = document.text
    if not document.page_starts:  # page offsets count the loader's own "\n" joins: keep them
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # The page each line is on (1-based), measured on the loader's text before normalising.
    pages: list[int | None] = []
    offset, page = 0, 0
    starts = document.page_starts or []
    source_lines = text.split("\n")
    for line in source_lines:
        while page < len(starts) and starts[page] <= offset:
            page += 1
        pages.append(page if starts else None)
        offset += len(line) + 1
    raw_lines = [normalise_stored(_INVISIBLE.sub("", _BREAKS.sub(" ", line.replace("\r", ""))))
                 for line in source_lines]

    forms = [matching_form(line) for line in raw_lines]
    nonblank = [i for i, f in enumerate(forms) if f]
    # A short line printed both among the first and the last lines is a page header/footer.
    head = {forms[i] for i in nonblank[:12]}
    tail = {forms[i] for i in nonblank[-12:]}
    repeated_frame = {f for f in head & tail if len(f) < 80} if len(nonblank) > 24 else set()

    # A link list holds short titles: a "相关信息" line followed by a paragraph somewhere later
    # (a file holding several pages or reports) starts no tail, and only that line goes.
    last_paragraph = max((i for i in nonblank if len(forms[i]) >= _PARAGRAPH_CHARS), default=-1)
    keep: list[int] = []
    info, removed, instructions = [], [], []
    tail_cut = False
    last_kept_form = None
    for i, (line, form) in enumerate(zip(raw_lines, forms)):
        if not form:
            continue
        if tail_cut or _TAIL_START.match(form):
            tail_cut = tail_cut or (i > len(raw_lines) // 2 and i > last_paragraph)
            removed.append(line)
            continue
        if is_info_line(line):
            info.append(line)
            removed.append(line)
            continue
        if form in repeated_frame or is_debris(line):
            removed.append(line)
            continue
        if form == last_kept_form and len(form) < 80:
            removed.append(line)  # a title printed twice in a row
            continue
        line, orders = without_instructions(line, form)
        if orders:
            instructions.extend(orders)
            raw_lines[i] = line
            if not line:
                continue
        keep.append(i)
        last_kept_form = form

    if document.page_text:
        # The article extractor drops the page's 发布日期/来源 line; metadata still wants it.
        for line in normalise_stored(document.page_text).split("\n"):
            if line and line not in info and is_info_line(line):
                info.append(line)

    text_lines, new_starts = [], []
    offset, current_page = 0, 0
    for i in keep:
        if pages[i] is not None:
            while current_page < pages[i]:
                new_starts.append(offset)
                current_page += 1
        text_lines.append(raw_lines[i])
        offset += len(raw_lines[i]) + 1
    if document.page_starts:
        # Pages that were all debris still need a start, so page numbers stay true.
        while len(new_starts) < len(document.page_starts):
            new_starts.append(offset)
    return CleanedText(text="\n".join(text_lines),
                       page_starts=new_starts if document.page_starts else None,
                       info_lines=info, removed=removed + instructions, instructions=instructions)

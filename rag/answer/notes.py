"""Answer notes: what changed or failed while a question was answered, as a code with parameters.

A ``Note`` is its English sentence -- a ``str``, so ``rag ask --json``, logs and every caller that
reads notes as text keep working -- and it also carries its code, its parameters and its
Chinese wording. All wording lives in ``WORDING``: the app shows ``note.zh``, the CLI and eval
the English text; rewording a note never needs a parser elsewhere.
"""

from __future__ import annotations

# code -> (English, Chinese); placeholders are the note's parameters.
WORDING: dict[str, tuple[str, str]] = {
    "llm_unavailable": ("LLM unavailable ({reason}); answered extractively",
                        "模型不可用（{reason}），已改为摘录原文回答"),
    "llm_failed": ("LLM failed ({error}); answered extractively",
                   "模型调用失败（{error}），已改为摘录原文回答"),
    "model_stopped": ("the built-in model stopped during the answer and is being restarted; "
                      "answered from the reports' own sentences",
                      "内置模型在回答时停止运行，正在重启；本次回答摘自报告原句"),
    "model_refused": ("the model said the reports do not say it, but a passage does; answered extractively",
                      "模型认为报告未提及，但有段落提到，已改为摘录原文回答"),
    "no_support": ("no passage supports the model's answer; answered extractively",
                   "模型的回答没有段落支持，已改为摘录原文回答"),
    "figures_differ": ("the model's figures ({figures}) differ from the best-matching sentences; "
                       "answered extractively",
                       "模型给出的数字（{figures}）与原文不一致，已改为摘录原文回答"),
    "left_out_places": ("the model's answer left out {places}; answered extractively",
                        "模型的回答漏掉了{places}，已改为摘录原文回答"),
    "left_out_figures": ("the model's answer left out figures the question asks about ({figures}); "
                         "answered extractively",
                         "模型的回答漏掉了问题所问的数字（{figures}），已改为摘录原文回答"),
    "left_out_names": ("the model's answer left out names the reports list ({names}); answered extractively",
                       "模型的回答漏掉了报告列出的名称（{names}），已改为摘录原文回答"),
    "not_grounded": ("the model's answer did not hold up against the cited passages ({figures}); "
                     "answered extractively",
                     "模型的回答与引用段落不符（{figures}），已改为摘录原文回答"),
    "removed_sentences": ("removed sentences not supported by their cited passages: {figures}",
                          "已删去引用段落不支持的句子：{figures}"),
    "comparison_table": ("comparison answered from the figures table; the conclusion is computed from the values",
                         "对比由各地数字计算得出"),
    "section_summary": ("answered from the report's part or section as a whole: its points, in the report's words",
                        "按报告的相应部分整体作答：列出其要点，均为报告原文"),
    "model_overview": ("the overview was written by the model from the points below it; its figures checked "
                       "against the cited passages",
                       "概述由模型根据下列要点写成，其中数字已与引用段落核对"),
    "overview_dropped": ("the model's overview was left out ({reason}); the report's points are given alone",
                         "模型写的概述未采用（{reason}），只列出报告原文要点"),
    "change_not_given": ("the reports state the figure but not how it changed; said so, with what they state",
                         "报告只给出该数字、未给出其变化，已说明并列出报告所载"),
    "infer_not_given": ("the question asks to infer a figure and the passages found lack the count or the rate "
                        "it needs; said so, with what they state",
                        "问题要求推算，报告相关段落缺少所需的数量或增幅、比例，已说明并列出报告所载"),
    "rate_not_given": ("the question asks for a rate and the passages found state only counts; said so, "
                       "with what they state",
                       "问题问的是比率，报告相关段落只给出数量，已说明并列出报告所载"),
    "stage_not_given": ("the question asks for the number {asked} and the passages found give only the number "
                        "{stated}; said so, with what they state",
                        "问题问的是{asked}的数字，报告相关段落只给出{stated}的数字，已说明并列出报告所载"),
    "unit_not_given": ("the question asks for a number of {unit} and the passages found state none; said so, "
                       "with what they state",
                       "问题问的是以“{unit}”计的数字，报告相关段落没有给出，已说明并列出报告所载"),
    "asks_answered": ("the question asks for {asked} figures; each was looked up on its own ({answered} found)",
                      "问题问了{asked}个数字，已逐项查找（找到{answered}项）"),
    "ask_not_mentioned": ("the reports found do not give: {asks}; said so beside the figures they give",
                          "报告相关段落没有给出：{asks}；已在回答中说明"),
    "model_chose": ("the question's words are not the report's: the model picked the answering sentence among "
                    "{offered}, and its pick was checked against the sentence",
                    "问题的措辞与报告不同：由模型从{offered}句候选原文中选出回答的一句，并已与原文核对"),
    "premise_differs": ("the question's figure ({figures}) is not in the reports; answered with the reports' figures",
                        "问题中的数字（{figures}）与报告不符，已按报告所载数字回答"),
    "computed": ("the computation was done by code from the cited figures",
                 "计算由程序根据所引数字完成，未经模型改写"),
    "not_computed": ("nothing was computed: {reason}", "未作计算：{reason}"),
    "trend_table": ("answered from the place's figures year by year; the changes are computed from the values",
                    "逐年数字取自各年报告，变化由程序计算"),
    "years_missing": ("the index has no report of {place} for {years}", "库中没有{place}{years}年的报告"),
    # Shown in Chinese in both languages since it was written; kept so.
    "missing_places": ("库中没有{places}{years}的报告，只回答了其余地区",
                       "库中没有{places}{years}的报告，只回答了其余地区"),
}


class Note(str):
    """One note: the English text, with ``code``, ``params`` and ``zh``.

    Example:
        >>> note = Note("left_out_places", places="侯马市")
        >>> note, note.code, note.zh
        ("the model's answer left out 侯马市; answered extractively", 'left_out_places', '模型的回答漏掉了侯马市，已改为摘录原文回答')
    """

    code: str
    params: dict

    def __new__(cls, code: str, **params: str) -> "Note":
        if code not in WORDING:
            raise KeyError(f"unknown note code {code!r}; add its wording to rag.answer.notes.WORDING")
        note = super().__new__(cls, WORDING[code][0].format(**params))
        note.code, note.params = code, dict(params)
        return note

    def __getnewargs_ex__(self):  # copies and pickles (Gradio's state) rebuild it from its code
        return (self.code,), self.params

    @property
    def zh(self) -> str:
        return WORDING[self.code][1].format(**self.params)


def in_chinese(note: str) -> str:
    """A note's Chinese wording (text that is not a ``Note`` is shown as it is)."""
    return note.zh if isinstance(note, Note) else note

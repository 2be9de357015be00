"""English and Chinese strings of the web app; plugin labels use Hiplot's own i18n dicts."""

from __future__ import annotations

from typing import Any

from hisci.models.meta import localize

LANGS = ("en", "zh_cn")

TEXT: dict[str, tuple[str, str]] = {
    # key: (English, Chinese)
    "app.title": ("hisci", "hisci"),
    "nav.catalogue": ("Catalogue", "插件目录"),
    "nav.jobs": ("My jobs", "我的任务"),
    "nav.preview": ("Preview", "插件预览"),
    "nav.login": ("Log in", "登录"),
    "nav.logout": ("Log out", "退出"),
    "nav.lang": ("中文", "English"),
    "login.title": ("Log in with your token", "使用令牌登录"),
    "login.token": ("Access token", "访问令牌"),
    "login.button": ("Log in", "登录"),
    "login.bad": ("This token is not valid.", "令牌无效。"),
    "login.ok": ("Logged in as {name}.", "已登录：{name}。"),
    "login.needed": ("Log in to see this page.", "请先登录。"),
    "login.needed_submit": ("Log in to submit a job.", "登录后才能提交任务。"),
    "login.no_service": ("The job service is not running, so there is nothing to log in to.",
                         "任务服务未运行，无法登录。"),
    "cat.search": ("Search plugins", "搜索插件"),
    "cat.tag": ("Filter by tag", "按标签筛选"),
    "cat.open": ("Open", "打开"),
    "cat.preview": ("Preview", "预览"),
    "cat.invalid": ("invalid", "无效"),
    "cat.not_runnable": ("form only (no runtime)", "仅表单（无运行时）"),
    "cat.none": ("No plugin matches.", "没有匹配的插件。"),
    "cat.author": ("Author", "作者"),
    "cat.version": ("Version", "版本"),
    "cat.citation": ("Citation", "引用"),
    "cat.count": ("{n} plugins", "{n} 个插件"),
    "form.load_example": ("Load example", "载入示例"),
    "form.submit": ("Submit", "提交"),
    "form.invalid": ("Fix the fields marked in red before submitting.", "请先修正标红的字段。"),
    "form.ready": ("The form is valid.", "表单有效。"),
    "form.table.add_row": ("Add row", "添加行"),
    "form.table.add_col": ("Add column", "添加列"),
    "form.table.example": ("Load example table", "载入示例表格"),
    "form.table.paste": ("Paste from a spreadsheet (first line is the header), then apply",
                         "从表格软件粘贴（第一行为表头），然后应用"),
    "form.table.apply": ("Apply pasted table", "应用粘贴的表格"),
    "form.table.upload": ("Drop or choose a table file", "拖入或选择表格文件"),
    "form.file.choose": ("Drop or choose a file", "拖入或选择文件"),
    "form.file.allowed": ("Allowed: {exts}", "允许：{exts}"),
    "form.unknown_widget": ("Cannot draw widget type {type!r}.", "无法绘制控件类型 {type!r}。"),
    "form.general": ("General", "通用"),
    "form.columns": ("Columns", "列"),
    "form.inputs": ("Inputs", "输入"),
    "form.parameters": ("Parameters", "参数"),
    "form.not_runnable": ("This plugin has no runtime block: its form can be drawn, not run.",
                          "此插件没有运行时配置：只能显示表单，不能运行。"),
    "plugin.not_found": ("Plugin not found: {id}", "未找到插件：{id}"),
    "plugin.invalid": ("This plugin is invalid and cannot be used:", "此插件无效，无法使用："),
    "job.not_found": ("Job not found.", "未找到任务。"),
    "job.title": ("Job {id}", "任务 {id}"),
    "job.status": ("Status", "状态"),
    "job.plugin": ("Plugin", "插件"),
    "job.created": ("Created", "创建时间"),
    "job.started": ("Started", "开始时间"),
    "job.finished": ("Finished", "结束时间"),
    "job.log": ("Log", "日志"),
    "job.figures": ("Figures", "图"),
    "job.compare": ("Compare the sweep", "比较扫描结果"),
    "compare.title": ("Sweep of {param}", "参数扫描：{param}"),
    "compare.back": ("Back to the sweep", "返回扫描任务"),
    "compare.figure": ("Figure", "图"),
    "compare.summary": ("Summary numbers", "结果数值"),
    "compare.not_sweep": ("This job is not a sweep.", "此任务不是参数扫描。"),
    "form.sweep": ("Sweep one parameter (one job per value)", "扫描一个参数（每个取值一个任务）"),
    "form.sweep_field": ("Parameter", "参数"),
    "form.sweep_values": ("Values: start:stop:step or a,b,c", "取值：起:止:步长 或 a,b,c"),
    "job.files": ("Output files", "输出文件"),
    "job.steps": ("Workflow steps", "工作流步骤"),
    "job.workflow_outputs": ("Workflow outputs", "工作流输出"),
    "preview.graph": ("Workflow graph", "工作流图"),
    "job.zip": ("Download all (zip)", "全部下载（zip）"),
    "job.params": ("Parameters", "参数"),
    "job.run_again": ("Run again with these parameters", "用这些参数再次运行"),
    "job.cancel": ("Cancel", "取消"),
    "job.retry": ("Retry", "重试"),
    "job.reason": ("Reason", "原因"),
    "job.size": ("Size", "大小"),
    "job.file": ("File", "文件"),
    "job.actions": ("Actions", "操作"),
    "jobs.title": ("My jobs", "我的任务"),
    "jobs.none": ("No jobs yet.", "暂无任务。"),
    "jobs.open": ("Open", "打开"),
    "service.missing": ("The job service is not available in this app.", "此应用未连接任务服务。"),
    "preview.title": ("Plugin preview and debug", "插件预览与调试"),
    "preview.pick": ("Start from a registered plugin", "从已注册插件开始"),
    "preview.upload": ("Or drop meta.json, data.json, ui.json (or a zip of the folder)",
                       "或拖入 meta.json、data.json、ui.json（或文件夹的 zip）"),
    "preview.problems": ("Problems", "问题"),
    "preview.warnings": ("Warnings (tolerated, as in Hiplot)", "警告（按 Hiplot 的做法容许）"),
    "cat.warnings": ("{n} warning(s)", "{n} 个警告"),
    "preview.no_problems": ("No problems: the plugin is valid.", "没有问题：插件有效。"),
    "preview.form": ("Live form", "实时表单"),
    "preview.schema": ("Derived parameter schema", "参数 Schema"),
    "preview.run": ("Run example", "运行示例"),
    "preview.result": ("Result", "结果"),
    "preview.cannot_run": ("Cannot run: {why}", "无法运行：{why}"),
    "status.queued": ("queued", "排队中"),
    "status.held": ("held", "等待资源"),
    "status.running": ("running", "运行中"),
    "status.succeeded": ("succeeded", "成功"),
    "status.failed": ("failed", "失败"),
    "status.cancelled": ("cancelled", "已取消"),
}


#: Labels of Hiplot's common ``config.general`` keys (the "General" panel).
GENERAL_LABELS: dict[str, dict[str, str]] = {
    "title": {"en": "Title", "zh_cn": "标题"},
    "imageExportType": {"en": "Export formats", "zh_cn": "导出格式"},
    "font": {"en": "Font", "zh_cn": "字体"},
    "theme": {"en": "Theme", "zh_cn": "主题"},
    "palette": {"en": "Palette", "zh_cn": "调色板"},
    "paletteCont": {"en": "Continuous palette", "zh_cn": "连续调色板"},
    "alpha": {"en": "Opacity", "zh_cn": "透明度"},
    "titleSize": {"en": "Title size", "zh_cn": "标题字号"},
    "axisTitleSize": {"en": "Axis title size", "zh_cn": "坐标轴标题字号"},
    "axisTextFontSize": {"en": "Axis text size", "zh_cn": "坐标轴文字字号"},
    "legendTitleSize": {"en": "Legend title size", "zh_cn": "图例标题字号"},
    "legendTextSize": {"en": "Legend text size", "zh_cn": "图例文字字号"},
    "xAxisTextAngle": {"en": "X text angle", "zh_cn": "X 轴文字角度"},
    "xAxisHjust": {"en": "X text hjust", "zh_cn": "X 轴文字水平对齐"},
    "xAxisVjust": {"en": "X text vjust", "zh_cn": "X 轴文字垂直对齐"},
    "legendPos": {"en": "Legend position", "zh_cn": "图例位置"},
    "legendDir": {"en": "Legend direction", "zh_cn": "图例方向"},
    "legendTitle": {"en": "Legend title", "zh_cn": "图例标题"},
    "xlab": {"en": "X label", "zh_cn": "X 轴标签"},
    "ylab": {"en": "Y label", "zh_cn": "Y 轴标签"},
}


def t(key: str, lang: str = "en", **fields: Any) -> str:
    """The text of ``key`` in ``lang`` (English when unknown), formatted with ``fields``."""
    pair = TEXT.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "zh_cn" else pair[0]
    return text.format(**fields) if fields else text


def label(value: Any, lang: str = "en", fallback: str = "") -> str:
    """A Hiplot label (i18n dict, ``messages.*`` key or plain string) in ``lang``."""
    text = localize(value, lang) if value not in (None, "") else ""
    return text or fallback


def norm_lang(lang: Any) -> str:
    return lang if lang in LANGS else "en"

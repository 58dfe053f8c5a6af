// Weather Restore: show Quality Perceiver's score and tier on the node after a run.
// The node returns them as the V3 UI output `ui.PreviewText` ({"text": [...]}, see nodes/quality.py);
// ComfyUI's frontend draws a `text` output only for nodes that ask for it, which this does with one
// read-only text widget, created on the first result and never saved into the workflow.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const NODES_WITH_TEXT = ["WeatherRestore_QualityPerceiver"];
const WIDGET = "quality_report";

function showText(node, message) {
  const text = Array.isArray(message?.text) ? message.text.join("\n") : (message?.text ?? "");
  let widget = node.widgets?.find((w) => w.name === WIDGET);
  if (!widget) {
    widget = ComfyWidgets.STRING(node, WIDGET, ["STRING", { multiline: true }], app).widget;
    widget.serialize = false;
    widget.options = { ...(widget.options || {}), serialize: false, read_only: true };
    if (widget.inputEl) {
      widget.inputEl.readOnly = true;
      widget.inputEl.style.opacity = 0.85;
    }
  }
  widget.value = text;
  node.setSize?.([node.size[0], Math.max(node.size[1], node.computeSize()[1])]);
  app.graph?.setDirtyCanvas?.(true, false);
}

app.registerExtension({
  name: "WeatherRestore.QualityText",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODES_WITH_TEXT.includes(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      showText(this, message);
    };
  },
});

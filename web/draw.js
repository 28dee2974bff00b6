// A canvas to draw a digit on, sent as a PNG to TensorFlow Serving's REST API:
// POST http://ADDRESS/v1/models/MODEL:predict, signature "predict_images", the PNG as {"b64": ...}.
// The server decodes, resizes and inverts it (models/image_signature.py); the page shows the
// ten probabilities and the digit. ?rest=host:port&model=name set the fields' defaults.
"use strict";

const params = new URLSearchParams(location.search);
const address = document.getElementById("address");
const model = document.getElementById("model");
const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const digit = document.getElementById("digit");
const bars = document.getElementById("bars");
const message = document.getElementById("message");
address.value = params.get("rest") || "localhost:8501";
model.value = params.get("model") || "mnist_flax";

// One row per digit: the label, a bar, the probability.
const meters = [];
for (let d = 0; d < 10; d++) {
  const row = document.createElement("div");
  row.className = "bar";
  row.dataset.digit = d;
  row.innerHTML = `<span>${d}</span><meter min="0" max="1" value="0"></meter><output></output>`;
  bars.appendChild(row);
  meters.push(row);
}

// Dark ink on white, as on paper: the signature inverts an image whose border is light.
function clear() {
  context.fillStyle = "white";
  context.fillRect(0, 0, canvas.width, canvas.height);
  digit.textContent = "";
  message.textContent = "";
  for (const row of meters) show(row, null);
}

function show(row, probability) {
  row.querySelector("meter").value = probability || 0;
  row.querySelector("output").textContent = probability === null ? "" : probability.toFixed(4);
  row.dataset.probability = probability === null ? "" : String(probability);
}

let drawing = false;
function point(event) {
  const box = canvas.getBoundingClientRect();
  return [event.clientX - box.left, event.clientY - box.top];
}
canvas.addEventListener("pointerdown", (event) => {
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  context.lineWidth = 22;
  context.lineCap = context.lineJoin = "round";
  context.strokeStyle = "black";
  context.beginPath();
  context.moveTo(...point(event));
  context.lineTo(...point(event));
  context.stroke();
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  context.lineTo(...point(event));
  context.stroke();
});
canvas.addEventListener("pointerup", () => {
  drawing = false;
  classify(); // The drawing's end sends it.
});

async function classify() {
  const url = `http://${address.value}/v1/models/${encodeURIComponent(model.value)}:predict`;
  const png = canvas.toDataURL("image/png").split(",")[1];
  const body = { signature_name: "predict_images", instances: [{ b64: png }] };
  message.textContent = "";
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    // The browser tells a server that does not answer and one that refuses the origin apart
    // only in its console, so both are named.
    message.textContent =
      `No answer from ${url}. Start a server (make serve CORS=1) and check the address; ` +
      "if one runs, it refused this page's origin: restart it with CORS on (make serve CORS=1, " +
      "or --rest_api_enable_cors_support).";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    message.textContent = `The server answered ${response.status}: ${answer.error || "no reason given"}`;
    return;
  }
  const { classes, probabilities } = answer.predictions[0];
  digit.textContent = String(classes);
  probabilities.forEach((p, d) => show(meters[d], p));
}

document.getElementById("classify").addEventListener("click", classify);
document.getElementById("clear").addEventListener("click", clear);
clear();

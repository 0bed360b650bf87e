/**
 * The demo page: choose or drop an image, pick a method and a GMACs budget, see the top-5, the
 * time, the GMACs, the threads and which patches each stage removed. The engine runs in a
 * dedicated worker (engine-worker.ts); a service worker keeps the page, the library and the
 * models for offline use.
 *
 * `window.vitpruneDemo` lets tests drive the page (test/browser.test.ts).
 */
import {
  describeLibraryStatus,
  type Classification,
  type EngineEnvironment,
  type FromEngine,
  type ModelSummary,
  type Prediction,
  type PruneChoice,
  type ToEngine,
} from './protocol.js';
import { showStages } from './tokens-view.js';

interface ServedModel {
  name: string;
  url: string;
}

const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`expected an element #${id} in the page, found none`);
  return element as T;
};

const ui = {
  environment: $<HTMLElement>('environment'),
  status: $<HTMLElement>('status'),
  model: $<HTMLSelectElement>('model'),
  progress: $<HTMLProgressElement>('progress'),
  photos: $<HTMLElement>('photos'),
  file: $<HTMLInputElement>('file'),
  drop: $<HTMLElement>('drop'),
  preview: $<HTMLImageElement>('preview'),
  method: $<HTMLSelectElement>('method'),
  budget: $<HTMLInputElement>('budget'),
  budgetValue: $<HTMLOutputElement>('budget-value'),
  stats: $<HTMLElement>('stats'),
  top5: $<HTMLOListElement>('top5'),
  stages: $<HTMLElement>('stages'),
};

const params = new URLSearchParams(location.search);
const engine = new Worker(new URL('./engine-worker.js', import.meta.url), { type: 'module', name: 'vitprune-engine' });
const send = (message: ToEngine, transfer: Transferable[] = []): void => engine.postMessage(message, transfer);

let environment: EngineEnvironment | null = null;
let loadedModel: ModelSummary | null = null;
let imageChosen = false;
let nextId = 1;
const pending = new Map<number, { resolve: (m: FromEngine) => void; reject: (e: Error) => void }>();
const started = new Promise<EngineEnvironment>((resolve, reject) => {
  engine.addEventListener('message', ({ data }: MessageEvent<FromEngine>) => {
    if (data.type === 'started') resolve(data.environment);
  });
  // A module worker whose imports fail reports an error event without details (they are in the console).
  engine.addEventListener('error', (event) => {
    event.preventDefault();
    reject(new Error(`the engine (a module worker) failed to start${event.message ? `: ${event.message}` : ''}; the browser's console tells why`));
  });
});
let modelLoaded: Promise<ModelSummary> | null = null; // set by loadModel

function setStatus(text: string, kind: 'info' | 'error' = 'info'): void {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind;
}

/** Threads to ask for: the page's ?threads=N, else up to 4 of the cores when isolated, else 1. */
function threadsWanted(env: EngineEnvironment): number {
  const asked = Number(params.get('threads'));
  if (Number.isInteger(asked) && asked >= 1) return asked;
  return env.crossOriginIsolated ? Math.min(4, env.cores) : 1;
}

function request(message: ToEngine & { id: number }): Promise<FromEngine> {
  return new Promise((resolve, reject) => {
    pending.set(message.id, { resolve, reject });
    send(message);
  });
}

engine.addEventListener('message', ({ data }: MessageEvent<FromEngine>) => {
  switch (data.type) {
    case 'progress':
      ui.progress.max = data.total;
      ui.progress.value = data.loaded;
      return;
    case 'result':
    case 'inspected':
      pending.get(data.id)?.resolve(data);
      pending.delete(data.id);
      return;
    case 'error':
      if (data.id !== null && pending.has(data.id)) {
        pending.get(data.id)!.reject(new Error(data.message));
        pending.delete(data.id);
      } else {
        setStatus(data.message, 'error');
      }
      return;
  }
});

function describeEnvironment(env: EngineEnvironment, model: ModelSummary | null): string {
  const isolation = env.crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated (one thread)';
  const engineText = model ? ` · ${model.backend}, ${model.threads} thread${model.threads === 1 ? '' : 's'}` : '';
  return `${isolation} · ${env.cores} cores${engineText}`;
}

function loadModel(model: ServedModel): void {
  loadedModel = null;
  ui.progress.hidden = false;
  ui.progress.removeAttribute('value');
  setStatus(`loading ${model.name}…`);
  modelLoaded = new Promise((resolve, reject) => {
    const listener = ({ data }: MessageEvent<FromEngine>): void => {
      if (data.type === 'loaded') {
        engine.removeEventListener('message', listener);
        resolve(data.model);
        loadedModel = data.model;
        ui.progress.hidden = true;
        fillMethods(data.model.methods);
        ui.environment.textContent = describeEnvironment(environment!, data.model);
        setStatus(`${model.name} loaded in ${Math.round(data.ms)} ms`);
        classify();
      } else if (data.type === 'error' && data.id === null) {
        engine.removeEventListener('message', listener);
        ui.progress.hidden = true;
        reject(new Error(data.message));
      }
    };
    engine.addEventListener('message', listener);
  });
  modelLoaded.catch(() => {}); // shown by the status line
  send({ type: 'load', url: new URL(model.url, location.href).href, name: model.name, threads: threadsWanted(environment!) });
}

let methodChosen = false; // by the person: until then the page shows Zero-TPrune where the library has it

function fillMethods(methods: string[]): void {
  const chosen = methodChosen ? ui.method.value : methods.includes('zero-tprune') ? 'zero-tprune' : 'dense';
  ui.method.replaceChildren(...['dense', ...methods].map((m) => new Option(m, m, false, m === chosen)));
  ui.method.value = chosen;
  updateBudgetControl();
}

function updateBudgetControl(): void {
  ui.budget.disabled = ui.method.value === 'dense';
  ui.budgetValue.textContent = ui.budget.disabled ? 'dense' : `${Math.round(Number(ui.budget.value) * 100)} % of dense GMACs`;
}

function pruneChoice(): PruneChoice {
  return { method: ui.method.value || 'dense', budget: Number(ui.budget.value) };
}

async function chooseImage(bytes: Uint8Array, type: string): Promise<void> {
  ui.preview.src = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  ui.preview.hidden = false;
  send({ type: 'image', bytes });
  imageChosen = true;
  classify();
}

async function chooseImageUrl(url: string): Promise<void> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  await chooseImage(new Uint8Array(await response.arrayBuffer()), response.headers.get('Content-Type') ?? '');
}

let firstResultAt: number | null = null; // ms from the start of navigation to the first result shown

function showResult(result: Classification): void {
  firstResultAt ??= performance.now();
  const percent = (100 * result.gmacs) / result.denseGmacs;
  ui.stats.textContent =
    `${result.ms.toFixed(1)} ms/image · ${result.gmacs.toFixed(3)} of ${result.denseGmacs.toFixed(3)} GMACs (${percent.toFixed(1)} %) · ` +
    `${result.threads} thread${result.threads === 1 ? '' : 's'}`;
  ui.top5.replaceChildren(...result.predictions.map(predictionItem));
  showStages(ui.stages, result);
}

function predictionItem(p: Prediction): HTMLLIElement {
  const item = document.createElement('li');
  const name = document.createElement('span');
  name.textContent = p.description || p.label;
  const bar = document.createElement('meter');
  bar.min = 0;
  bar.max = 1;
  bar.value = p.score;
  const score = document.createElement('span');
  score.textContent = `${(100 * p.score).toFixed(1)} %`;
  item.append(name, bar, score);
  return item;
}

function classify(): void {
  if (!loadedModel || !imageChosen) return;
  const id = nextId++;
  request({ type: 'classify', id, prune: pruneChoice() })
    .then((message) => {
      if (message.type === 'result') showResult(message.result);
    })
    .catch((e: Error) => {
      if (e.message !== 'superseded by a newer request') setStatus(e.message, 'error');
    });
}

/** The model being loaded or loaded, once the page has started; rejects when the page has none. */
async function whenLoaded(): Promise<ModelSummary> {
  await ready;
  if (!modelLoaded) throw new Error(`no model is loaded: ${ui.status.textContent}`);
  return modelLoaded;
}

async function inspect(imageUrl: string, prune: PruneChoice, topK = 5): Promise<{ predictions: Prediction[]; logits: number[] }> {
  await whenLoaded();
  await chooseImageUrl(imageUrl);
  const message = await request({ type: 'inspect', id: nextId++, prune, topK });
  if (message.type !== 'inspected') throw new Error(`expected the engine's inspection, got '${message.type}'`);
  return { predictions: message.predictions, logits: Array.from(message.logits) };
}

// ---------------------------------------------------------------- wiring

ui.method.addEventListener('change', () => {
  methodChosen = true;
  updateBudgetControl();
  classify();
});
ui.budget.addEventListener('input', () => {
  updateBudgetControl();
  classify();
});
ui.model.addEventListener('change', () => loadModel({ name: ui.model.selectedOptions[0].text, url: ui.model.value }));
ui.file.addEventListener('change', async () => {
  const file = ui.file.files?.[0];
  if (file) await chooseImage(new Uint8Array(await file.arrayBuffer()), file.type);
});
ui.drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  ui.drop.classList.add('over');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
ui.drop.addEventListener('drop', async (event) => {
  event.preventDefault();
  ui.drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) await chooseImage(new Uint8Array(await file.arrayBuffer()), file.type);
});

async function fetchJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

async function start(): Promise<void> {
  if ('serviceWorker' in navigator && params.get('offline') !== 'no') {
    navigator.serviceWorker.register('/service-worker.js', { scope: '/' }).catch((e: Error) =>
      console.warn(`vitprune demo: no offline copy (${e.message})`),
    );
  }
  const [models, photos] = await Promise.all([fetchJson<ServedModel[]>('/models/'), fetchJson<string[]>('/images/')]);
  for (const url of photos) {
    const button = document.createElement('button');
    const thumbnail = document.createElement('img');
    thumbnail.src = url;
    thumbnail.alt = url.split('/').pop()!;
    button.append(thumbnail);
    button.addEventListener('click', () => chooseImageUrl(url).catch((e: Error) => setStatus(e.message, 'error')));
    ui.photos.append(button);
  }
  ui.model.replaceChildren(...models.map((m) => new Option(m.name, m.url)));
  updateBudgetControl();
  if (photos.length > 0) await chooseImageUrl(photos[0]);
  const env = await started;
  environment = env;
  ui.environment.textContent = describeEnvironment(env, null);
  if (!env.library.wired) {
    setStatus(`engine not ready: ${describeLibraryStatus(env.library)}`, 'error');
    return;
  }
  if (models.length === 0) {
    setStatus('no model served: start the demo with --model DIR (a folder holding config.json and model.safetensors)', 'error');
    return;
  }
  loadModel(models[0]);
}

const ready = start();
ready.catch((e: Error) => setStatus(e.message, 'error'));

/** What `window.vitpruneDemo` offers to tests. */
export interface DemoPageApi {
  ready: Promise<void>;
  environment(): Promise<{ page: { crossOriginIsolated: boolean }; engine: EngineEnvironment }>;
  whenLoaded(): Promise<ModelSummary>;
  inspect(imageUrl: string, prune: PruneChoice, topK?: number): Promise<{ predictions: Prediction[]; logits: number[] }>;
  chooseImageUrl(url: string): Promise<void>;
  classify(): void;
  stats(): string | null;
  status(): string | null;
  firstResultAt(): number | null;
}

const pageApi: DemoPageApi = {
  ready,
  environment: async () => ({ page: { crossOriginIsolated }, engine: await started }),
  whenLoaded,
  inspect,
  chooseImageUrl,
  classify,
  stats: () => ui.stats.textContent,
  status: () => ui.status.textContent,
  firstResultAt: () => firstResultAt,
};
Object.assign(window, { vitpruneDemo: pageApi });

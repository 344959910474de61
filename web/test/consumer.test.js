// A site that installed the package and bundles it: the exports map leads
// a bundler (esbuild here) to the ES module for import and to the classic
// script for the global, and the bundled client loads and works without a
// URL of its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as esbuild from "esbuild";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runInNewContext } from "node:vm";

const web = fileURLToPath(new URL("..", import.meta.url));

function browser() {
	const window = {
		location: { hostname: "site.example", port: "", protocol: "https:", origin: "https://site.example", href: "https://site.example/app/" },
		addEventListener() {},
		setTimeout,
		clearTimeout,
		crypto: globalThis.crypto,
	};
	window.globalThis = window;
	return Object.assign(window, { window, document: {}, URL, Uint32Array, Promise, Map, Set, Object });
}

async function bundleApp(code, extra = {}) {
	const dir = mkdtempSync(join(tmpdir(), "meteor-site-"));
	try {
		mkdirSync(join(dir, "node_modules"));
		symlinkSync(web, join(dir, "node_modules", "meteor-push-client"), "dir");
		writeFileSync(join(dir, "app.js"), code);
		const r = await esbuild.build({ absWorkingDir: dir, entryPoints: ["app.js"], bundle: true, write: false, format: "iife", logLevel: "silent", ...extra });
		return { text: r.outputFiles[0].text, inputs: Object.keys(r.metafile ? r.metafile.inputs : {}) };
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

test("import from the package: the ES module, over the classic script", async () => {
	const { text, inputs } = await bundleApp(
		'import Default, { MeteorClient, Meteor } from "meteor-push-client";\n' +
			"const c = new MeteorClient({ url: \"https://push.example.com:4670\" });\n" +
			"const d = new MeteorClient();\n" +
			"globalThis.out = { type: typeof MeteorClient, same: Meteor === globalThis.Meteor, dflt: Default === MeteorClient, url: c.url, durl: d.url, status: c.status, legacy: Meteor.client };\n",
		{ metafile: true },
	);
	assert.ok(inputs.some((f) => f.endsWith("public/meteor.mjs")), inputs.join(" "));
	assert.ok(inputs.some((f) => f.endsWith("public/meteor.js")), inputs.join(" "));
	const w = browser();
	runInNewContext(text, w);
	assert.deepEqual({ ...w.out }, {
		type: "function",
		same: true,
		dflt: true,
		url: "https://push.example.com:4670",
		durl: "https://site.example", // no URL of its own: the page's origin
		status: "closed",
		legacy: "meteor-go",
	});
});

test("the classic script from the package sets the global Meteor", async () => {
	const { text } = await bundleApp('import "meteor-push-client/meteor.js";\nglobalThis.out = typeof Meteor.joinChannel;\n');
	const w = browser();
	runInNewContext(text, w);
	assert.equal(w.out, "function");
	assert.equal(w.Meteor.version, "1.06-go.1");
});

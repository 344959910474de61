// build.js: bundles the client's ES modules (src/) into the files meteord
// serves (public/): the classic script meteor.js (src/classic.js, an IIFE
// that sets the global Meteor) and the ES module meteor.mjs (src/module.js,
// which loads meteor.js), with meteor.esm.js a copy of meteor.mjs.
//
//   node build.js            write public/
//   node build.js DIR        write DIR instead (the up-to-date test)
//   node build.js --check    fail if public/ differs from a fresh build
//
// The output is not minified and keeps each entry point's leading comment
// as its banner, so that the served files stay readable. esbuild is pinned
// in package.json and package-lock.json: the same source always gives the
// same bytes.
import * as esbuild from "esbuild";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

// The served files, in the order they are written.
export const OUTPUTS = ["meteor.js", "meteor.mjs", "meteor.esm.js"];

// banner returns the comment lines at the top of an entry point: esbuild
// drops comments, so they are put back in front of the bundle.
function banner(file) {
	const lines = readFileSync(join(here, file), "utf8").split("\n");
	const out = [];
	let block = false;
	for (const line of lines) {
		if (block) {
			out.push(line);
			block = !line.includes("*/");
		} else if (line.startsWith("/*")) {
			out.push(line);
			block = !line.includes("*/");
		} else if (line.startsWith("//")) {
			out.push(line);
		} else {
			break;
		}
	}
	return out.join("\n");
}

async function bundle(entry, format, extra) {
	const r = await esbuild.build({
		absWorkingDir: here,
		entryPoints: [entry],
		bundle: true,
		format,
		write: false,
		outfile: "out.js",
		platform: "browser",
		target: "es2020",
		charset: "ascii",
		legalComments: "none",
		logLevel: "warning",
		banner: { js: banner(entry) + (format === "iife" ? '\n"use strict";' : "") },
		...extra,
	});
	return r.outputFiles[0].text;
}

// build returns the served files: {name: text}.
export async function build() {
	const classic = await bundle("src/classic.js", "iife", {});
	const mod = await bundle("src/module.js", "esm", { external: ["./meteor.js"] });
	return { "meteor.js": classic, "meteor.mjs": mod, "meteor.esm.js": mod };
}

function write(dir, files) {
	for (const name of OUTPUTS) {
		writeFileSync(join(dir, name), files[name]);
	}
}

// stale returns the served files in public/ that differ from a build.
export async function stale() {
	const dir = mkdtempSync(join(tmpdir(), "meteor-web-"));
	try {
		write(dir, await build());
		return OUTPUTS.filter((name) => {
			let have = null;
			try {
				have = readFileSync(join(here, "public", name));
			} catch {}
			return !have || !have.equals(readFileSync(join(dir, name)));
		});
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
	const arg = process.argv[2];
	if (arg === "--check") {
		const bad = await stale();
		if (bad.length) {
			console.error(`public/ is out of date (${bad.join(", ")}): run npm run build in web/`);
			process.exit(1);
		}
	} else {
		write(arg || join(here, "public"), await build());
	}
}

// Drives the local emulator with Tencent Cloud's official Node.js SDK (tencentcloud-sdk-nodejs-common),
// unchanged: its CommonClient, its STSCredential and OIDCRoleArnCredential, its error objects. It also
// records what the SDK's own signer (tencentcloud/common/sign.js, Sign.sign3) was given and answered for
// every request it made, so the spec can reproduce each signature with this library's signer.
//
//   node driver.js MODULES_DIR PORT   (credentials in the environment: EMU_SECRET_ID, EMU_SECRET_KEY,
//                                      EMU_TMP_SECRET_ID, EMU_TMP_SECRET_KEY, EMU_TMP_TOKEN, EMU_ROLE_ARN,
//                                      EMU_PROVIDER_ID, EMU_WEB_IDENTITY_TOKEN)
// Prints one JSON object: case name -> { ok: Response } or { error: { code, requestId, message, httpCode } },
// each with `signed`, the signer calls made for it (no secret key and no token in them).
"use strict";
const http = require("http");
const fs = require("fs");
const os = require("os");
const path = require("path");

const modules = path.resolve(process.argv[2]);
const port = process.argv[3];
const sdkDir = path.join(modules, "tencentcloud-sdk-nodejs-common");
const sdk = require(sdkDir);
const Sign = require(path.join(sdkDir, "tencentcloud/common/sign")).default;
const JSONbig = require(path.join(modules, "json-bigint"))({ useNativeBigInt: true });
const env = process.env;

// The SDK names the service after the endpoint's first label and signs the host without its port, so it
// is pointed at the service's own host names on the emulator's port; this agent resolves every name to
// the emulator (the SDK takes an agent in its httpProfile).
const agent = new http.Agent({
  keepAlive: true,
  lookup(hostname, options, callback) {
    if (options && options.all) return callback(null, [{ address: "127.0.0.1", family: 4 }]);
    return callback(null, "127.0.0.1", 4);
  },
});
const profile = (host) => ({ httpProfile: { endpoint: `${host}:${port}`, protocol: "http://", agent } });
const IOT = "iotexplorer.tencentcloudapi.com";
const STS = "sts.tencentcloudapi.com";

let signed = [];
const sign3 = Sign.sign3;
Sign.sign3 = function (args) {
  const authorization = sign3.call(this, args);
  const url = new URL(args.url);
  const h = args.headers || {};
  signed.push({
    method: args.method, hostname: url.hostname, query: url.search.slice(1), timestamp: args.timestamp,
    service: args.service, secretId: args.secretId, contentType: h["Content-Type"],
    body: args.method === "POST" ? JSONbig.stringify(args.payload) : null,
    action: h["X-TC-Action"], version: h["X-TC-Version"], region: h["X-TC-Region"],
    token: h["X-TC-Token"] !== undefined, authorization,
  });
  return authorization;
};

function client(options = {}) {
  return new sdk.CommonClient(options.host || IOT, options.version || "2019-04-23", {
    credential: options.credential || { secretId: env.EMU_SECRET_ID, secretKey: env.EMU_SECRET_KEY },
    region: "ap-guangzhou",
    profile: options.profile || (() => {
      const p = profile(options.host || IOT);
      if (options.method) p.httpProfile.reqMethod = options.method;
      return p;
    })(),
  });
}

function control(route, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body || {});
    const req = http.request({ host: "127.0.0.1", port, path: `/_emulator/${route}`, method: "POST",
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`control ${route}: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const results = {};
async function run(name, fn) {
  signed = [];
  try {
    results[name] = { ok: await fn() };
  } catch (e) {
    results[name] = { error: { code: e.code, requestId: e.requestId, message: e.message, httpCode: e.httpCode } };
  }
  results[name].signed = signed;
}

const DOC = { ProductId: "R32ONVL0EU", BatchProductionId: "LC-ya6zinv9" };
const CREATE = { ProjectId: "PROJECT0001", ProductId: "R32ONVL0EU", BurnMethod: 0, GenerationMethod: 0, BatchCnt: 3 };

(async () => {
  const c = client();
  await run("describe", () => c.request("DescribeBatchProduction", DOC));
  await run("create", () => c.request("CreateBatchProduction", { ...CREATE, GenerationQRCode: 1 }));
  await run("list", () => c.request("GetBatchProductionsList", { ProjectId: "PROJECT0001", Offset: 0, Limit: 10 }));
  await run("get", () => client({ method: "GET" }).request("DescribeBatchProduction", DOC));
  await run("get_list", () => client({ method: "GET" }).request("GetBatchProductionsList",
    { ProjectId: "PROJECT0001", Limit: 2 }));
  await run("non_ascii", () => c.request("CreateBatchProduction", { ...CREATE, BatchCnt: undefined,
    GenerationMethod: 1, UploadUrl: "https://example.com/设备名单-ÄÖÜ-🙂.csv" }));
  await run("long", () => c.request("CreateBatchProduction", { ...CREATE, BatchCnt: undefined,
    GenerationMethod: 1, UploadUrl: "https://example.com/" + "x".repeat(200000) + ".csv" }));
  await run("empty", () => c.request("GetBatchProductionsList", {}));
  await run("token", () => client({ credential: { secretId: env.EMU_TMP_SECRET_ID, secretKey: env.EMU_TMP_SECRET_KEY,
    token: env.EMU_TMP_TOKEN } }).request("DescribeBatchProduction", DOC));

  await run("unknown", () => c.request("DescribeBatchProduction", { ...DOC, FutureFlag: 1 }));
  await run("missing", () => c.request("DescribeBatchProduction", { ProductId: DOC.ProductId }));
  await run("wrong_type", () => c.request("DescribeBatchProduction", { ...DOC, ProductId: 5 }));
  await run("out_of_range", () => c.request("CreateBatchProduction", { ...CREATE, BurnMethod: 2 }));
  await run("not_found", () => c.request("DescribeBatchProduction", { ...DOC, BatchProductionId: "LC-nope0000" }));
  await control("config", { rate_limit: 2 });
  await run("rate_limit", async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await c.request("GetBatchProductionsList", { ProjectId: "PROJECT0001" }));
    return answers;
  });
  await control("config", { rate_limit: 20 });
  await run("ip_endpoint", () => client({ host: `127.0.0.1`, profile: { httpProfile: {
    endpoint: `127.0.0.1:${port}`, protocol: "http://" } } }).request("DescribeBatchProduction", DOC));

  // STS through the SDK's own credential providers, then iotexplorer with the keys they obtained.
  const assumed = new sdk.STSCredential({ credential: { secretId: env.EMU_SECRET_ID, secretKey: env.EMU_SECRET_KEY },
    profile: profile(STS) }, { RoleArn: env.EMU_ROLE_ARN, RoleSessionName: "node-sdk", DurationSeconds: 900 });
  await run("assume_role", () => client({ credential: assumed }).request("DescribeBatchProduction", DOC));
  const tokenFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "oidc-")), "token");
  fs.writeFileSync(tokenFile, env.EMU_WEB_IDENTITY_TOKEN);
  Object.assign(process.env, { TKE_REGION: "ap-guangzhou", TKE_PROVIDER_ID: env.EMU_PROVIDER_ID,
    TKE_WEB_IDENTITY_TOKEN_FILE: tokenFile, TKE_ROLE_ARN: env.EMU_ROLE_ARN });
  const oidc = new sdk.OIDCRoleArnCredential({ profile: profile(STS) });
  await run("oidc", () => client({ credential: oidc }).request("DescribeBatchProduction", DOC));
  fs.rmSync(path.dirname(tokenFile), { recursive: true, force: true });

  agent.destroy();
  process.stdout.write(JSON.stringify(results) + "\n");
})().catch((e) => {
  process.stderr.write(`driver failed: ${e && e.stack}\n`);
  process.exit(1);
});

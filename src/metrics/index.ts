export * from "./auc.ts";
export * from "./gauc.ts";
export * from "./logloss.ts";
export * from "./summary.ts";

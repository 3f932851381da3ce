/** Test helpers: the weather tool's arguments schema the tool-call tests ask for, and its check. */
import { Ajv } from "ajv";

/** `{city, unit}`: a city of at most 24 characters and celsius or fahrenheit, nothing else. */
export const WEATHER = {
  type: "object",
  properties: {
    city: { type: "string", maxLength: 24 },
    unit: { enum: ["celsius", "fahrenheit"] },
  },
  required: ["city", "unit"],
  additionalProperties: false,
} as const;

/** True when `value` matches {@link WEATHER}. */
export const validateWeather: (value: unknown) => boolean = new Ajv({ strict: false }).compile(
  WEATHER,
);
